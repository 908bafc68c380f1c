// plot_math.cpp: see plot_math.h.
#include "simulator/plot_math.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sp {

double axis_to_unit(const Axis& a, double v) {
    if (a.log) return (std::log10(v) - std::log10(a.lo)) / (std::log10(a.hi) - std::log10(a.lo));
    return (v - a.lo) / (a.hi - a.lo);
}

double axis_from_unit(const Axis& a, double u) {
    if (a.log) return std::pow(10.0, std::log10(a.lo) + u * (std::log10(a.hi) - std::log10(a.lo)));
    return a.lo + u * (a.hi - a.lo);
}

std::string tick_label(double v) {
    char buf[32];
    double m = std::fabs(v);
    if (m == 0) return "0";
    struct Suffix {
        double scale;
        const char* name;
    } suffixes[] = {{1e9, "G"}, {1e6, "M"}, {1e3, "k"}};
    for (const Suffix& s : suffixes)
        if (m >= s.scale) {
            std::snprintf(buf, sizeof buf, "%.3g%s", v / s.scale, s.name);
            return buf;
        }
    if (m < 1e-2) std::snprintf(buf, sizeof buf, "%.2g", v);
    else std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

std::string value_label(double v) {
    if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    char buf[64];
    double m = std::fabs(v);
    if (std::round(m) >= 1000) {
        std::snprintf(buf, sizeof buf, "%.0f", m);
        std::string digits = buf, out = v < 0 ? "-" : "";
        for (size_t i = 0; i < digits.size(); i++) {
            if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
            out += digits[i];
        }
        return out;
    }
    if (m >= 1e-3 || m == 0) {
        // fixed notation with 4 significant digits, then trailing zeros dropped
        int decimals = m == 0 ? 0 : m >= 100 ? 1 : m >= 10 ? 2 : m >= 1 ? 3
                                                                       : 3 - static_cast<int>(std::floor(std::log10(m)));
        std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
        std::string s = buf;
        if (s.find('.') != std::string::npos) {
            while (s.back() == '0') s.pop_back();
            if (s.back() == '.') s.pop_back();
        }
        return s == "-0" ? "0" : s;
    }
    std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
}

std::string csv_field(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::vector<bool> boxes_place(const std::vector<Box>& boxes) {
    std::vector<bool> kept(boxes.size(), false);
    std::vector<Box> placed;
    for (size_t i = 0; i < boxes.size(); i++) {
        const Box& b = boxes[i];
        bool free = true;
        for (const Box& p : placed)
            if (b.x0 < p.x1 && p.x0 < b.x1 && b.y0 < p.y1 && p.y0 < b.y1) {
                free = false;
                break;
            }
        if (free) {
            placed.push_back(b);
            kept[i] = true;
        }
    }
    return kept;
}

static bool boxes_overlap(const Box& a, const Box& b) {
    return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
}

std::vector<LabelPlace> labels_place(const std::vector<LabelSpot>& labels, const std::vector<Box>& obstacles,
                                     const Box& area, double gap0) {
    std::vector<LabelPlace> out(labels.size());
    std::vector<Box> taken = obstacles;
    for (size_t i = 0; i < labels.size(); i++) {
        const LabelSpot& l = labels[i];
        const double gap = gap0 + l.pad;
        const Box spots[4] = {
            {l.x + gap, l.y - gap - l.h, l.x + gap + l.w, l.y - gap},          // right, above
            {l.x - gap - l.w, l.y - gap - l.h, l.x - gap, l.y - gap},          // left, above
            {l.x + gap, l.y + gap, l.x + gap + l.w, l.y + gap + l.h},          // right, below
            {l.x - gap - l.w, l.y + gap, l.x - gap, l.y + gap + l.h},          // left, below
        };
        for (const Box& b : spots) {
            if (b.x0 < area.x0 || b.y0 < area.y0 || b.x1 > area.x1 || b.y1 > area.y1) continue;
            bool free = true;
            for (const Box& t : taken)
                if (boxes_overlap(b, t)) {
                    free = false;
                    break;
                }
            if (!free) continue;
            out[i].placed = true;
            out[i].box = b;
            taken.push_back(b);
            break;
        }
    }
    return out;
}

// The "nice" step near range/target: mantissa 1, 2 or 5 times 10^exponent.
struct Step {
    double mantissa;
    int exponent;
};
static Step nice_step(double range, int target) {
    double raw = range / std::max(1, target);
    int e = static_cast<int>(std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0})
        if (m * std::pow(10.0, e) >= raw * (1 - 1e-12)) return {m, e};
    return {1.0, e + 1};
}

// k steps, computed as (k m) x 10^e or (k m) / 10^-e so that 3 x 0.2 is the
// double nearest 0.6, not 0.6000000000000001.
static double step_value(double k, Step s) {
    return s.exponent >= 0 ? k * s.mantissa * std::pow(10.0, s.exponent)
                           : k * s.mantissa / std::pow(10.0, -s.exponent);
}

double tick_step(double range, int target) { return step_value(1, nice_step(range, target)); }

std::vector<Tick> axis_ticks(const Axis& a, int target) {
    std::vector<Tick> out;
    double lo = std::min(a.lo, a.hi), hi = std::max(a.lo, a.hi);
    if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return out;
    if (!a.log) {
        Step st = nice_step(hi - lo, target);
        double step = step_value(1, st);
        for (double k = std::ceil(lo / step - 1e-9); step_value(k, st) <= hi + 1e-9 * step; k++) {
            double v = k == 0 ? 0 : step_value(k, st);
            out.push_back({v, tick_label(v), true});
        }
        return out;
    }
    if (lo <= 0) return out;
    int d0 = static_cast<int>(std::ceil(std::log10(lo) - 1e-9)), d1 = static_cast<int>(std::floor(std::log10(hi) + 1e-9));
    int decades = d1 - d0 + 1;
    int every = std::max(1, (decades + target - 1) / std::max(1, target));
    bool minors = std::log10(hi / lo) <= 3 + 1e-9;  // 2x and 5x ticks while they stay readable
    for (int d = d0 - 1; d <= d1; d++) {
        double base = std::pow(10.0, d);
        if (d >= d0 && (d - d0) % every == 0) out.push_back({base, tick_label(base), true});
        if (minors)
            for (double m : {2.0, 5.0}) {
                double v = m * base;
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push_back({v, tick_label(v), false});
            }
    }
    std::sort(out.begin(), out.end(), [](const Tick& x, const Tick& y) { return x.value < y.value; });
    return out;
}

void axis_zoom(Axis& a, double anchor, double factor) {
    double u0 = anchor - anchor * factor, u1 = anchor + (1 - anchor) * factor;
    double lo = axis_from_unit(a, u0), hi = axis_from_unit(a, u1);
    a.lo = lo;
    a.hi = hi;
}

void axis_pan(Axis& a, double delta) {
    double lo = axis_from_unit(a, delta), hi = axis_from_unit(a, 1 + delta);
    a.lo = lo;
    a.hi = hi;
}

Axis axis_fit(double lo, double hi, bool log) {
    Axis a;
    a.log = log;
    if (log) {
        lo = std::max(lo, 1e-12);
        hi = std::max(hi, lo);
        if (hi <= lo * 1.0001) {
            lo /= 2;
            hi *= 2;
        }
        double f = std::pow(hi / lo, 0.05);  // 5 % of the range on each side, in log space
        a.lo = lo / f;
        a.hi = hi * f;
        return a;
    }
    if (hi <= lo) {
        double w = std::max(std::fabs(lo) * 0.1, 1.0);
        lo -= w;
        hi += w;
    }
    double m = 0.05 * (hi - lo);
    a.lo = lo - m;
    a.hi = hi + m;
    return a;
}

Rgba plot_palette(int i) {
    static const Rgba palette[] = {
        {90, 160, 235, 255},  {245, 150, 50, 255},  {95, 200, 120, 255}, {180, 130, 230, 255},
        {240, 210, 80, 255},  {80, 210, 210, 255},  {245, 130, 190, 255}, {200, 160, 110, 255},
        {170, 170, 170, 255}, {170, 220, 80, 255},  {230, 95, 95, 255},
    };
    const int n = static_cast<int>(sizeof palette / sizeof palette[0]);
    return palette[((i % n) + n) % n];
}

int hit_test(const double* xs, const double* ys, int n, double mx, double my, double radius) {
    int best = -1;
    double best_d2 = radius * radius;
    for (int i = 0; i < n; i++) {
        double dx = xs[i] - mx, dy = ys[i] - my, d2 = dx * dx + dy * dy;
        if (d2 <= best_d2) {  // ties: the later point, which is drawn on top
            best = i;
            best_d2 = d2;
        }
    }
    return best;
}

}  // namespace sp
