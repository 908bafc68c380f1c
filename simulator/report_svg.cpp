// report_svg.cpp: a Drawing as SVG 1.1 text (report_plot.h). Every item is
// one element; an item drawing a series carries data-series="<label>", so
// the file can be read back (tests do) and restyled by hand.
#include <cstdio>
#include <string>

#include "simulator/report_plot.h"

namespace sp {

static std::string px(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    std::string s = buf;
    s.erase(s.find_last_not_of('0') + 1);  // 12.50 -> 12.5, 3.00 -> 3
    if (s.back() == '.') s.pop_back();
    return s == "-0" ? "0" : s;
}

// XML text and attribute values: the five characters XML reserves.
static std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default: out += c;
        }
    }
    return out;
}

static std::string hex(Rgba c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c.r, c.g, c.b);
    return buf;
}

// fill="..." and stroke="..." with their opacities; "none" where alpha is 0.
static std::string paint(const DrawItem& it) {
    std::string s;
    s += " fill=\"" + (it.fill.a ? hex(it.fill) : std::string("none")) + "\"";
    if (it.fill.a && it.fill.a < 255) s += " fill-opacity=\"" + px(it.fill.a / 255.0) + "\"";
    if (it.stroke.a) {
        s += " stroke=\"" + hex(it.stroke) + "\" stroke-width=\"" + px(it.width) + "\"";
        if (it.stroke.a < 255) s += " stroke-opacity=\"" + px(it.stroke.a / 255.0) + "\"";
        if (it.dashed) s += " stroke-dasharray=\"6,4\"";
    }
    if (!it.series.empty()) s += " data-series=\"" + xml_escape(it.series) + "\"";
    return s;
}

void plot_write_svg(std::ostream& out, const Drawing& d) {
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << d.width << "\" height=\""
        << d.height << "\" viewBox=\"0 0 " << d.width << ' ' << d.height
        << "\" font-family=\"DejaVu Sans, Verdana, sans-serif\">\n";
    for (const DrawItem& it : d.items) {
        switch (it.kind) {
            case DRAW_RECT:
                out << "<rect x=\"" << px(it.xy[0]) << "\" y=\"" << px(it.xy[1]) << "\" width=\""
                    << px(it.xy[2] - it.xy[0]) << "\" height=\"" << px(it.xy[3] - it.xy[1]) << '"' << paint(it)
                    << "/>\n";
                break;
            case DRAW_POLYLINE: {
                out << "<polyline points=\"";
                for (size_t i = 0; i + 1 < it.xy.size(); i += 2)
                    out << (i ? " " : "") << px(it.xy[i]) << ',' << px(it.xy[i + 1]);
                out << "\" stroke-linejoin=\"round\"" << paint(it) << "/>\n";
                break;
            }
            case DRAW_CIRCLE:
                out << "<circle cx=\"" << px(it.xy[0]) << "\" cy=\"" << px(it.xy[1]) << "\" r=\"" << px(it.xy[2])
                    << '"' << paint(it) << "/>\n";
                break;
            case DRAW_TEXT: {
                const char* anchor = it.anchor < 0 ? "start" : it.anchor == 0 ? "middle" : "end";
                out << "<text x=\"" << px(it.xy[0]) << "\" y=\"" << px(it.xy[1]) << "\" font-size=\"" << px(it.size)
                    << "\" text-anchor=\"" << anchor << '"';
                if (it.vertical) out << " transform=\"rotate(-90 " << px(it.xy[0]) << ' ' << px(it.xy[1]) << ")\"";
                out << paint(it) << '>' << xml_escape(it.text) << "</text>\n";
                break;
            }
        }
    }
    out << "</svg>\n";
}

}  // namespace sp
