// test_report_export.cpp: the exporters beside report.* against hand-worked
// fixtures: the Pareto frontier's interpolation and area, the InferenceX
// JSON, the Markdown tables, the plots' SVG (well-formed XML, series at the
// pixels the layout rule gives) and PNG (signature, size, a pixel's colour),
// and `sweep --plot/--inferencex/--format md` end to end.
//
// [SECTION] frontier and InferenceX
// [SECTION] Markdown
// [SECTION] plots
// [SECTION] command line
#include <gtest/gtest.h>

#include <cairo.h>

#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "simulator/report.h"
#include "simulator/report_plot.h"
#include "tests/cli_run.h"

using namespace sp;
using json = nlohmann::json;

namespace {

// A scenario for the report functions: a closed loop on a roofline (only
// names and the SLO are read).
Scenario report_scenario() {
    Scenario sc;
    sc.path = "s.toml";
    sc.name = "s";
    sc.workload.mode = WORKLOAD_CLOSED;
    sc.cost.kind = COST_ROOFLINE;
    sc.cost.roofline.model.name = "m";
    sc.cost.roofline.model.bytes_per_weight = 1;
    sc.cost.roofline.gpu.name = "h100-sxm";
    sc.engine.tp = 2;
    sc.slo.per_user_tok_s = 30;
    return sc;
}

// A point whose every TPOT is `tpot` s (the sketch's quantiles then clamp to it exactly).
PointResult point(const char* policy, int users, double out_tok_s, double in_tok_s, double tpot) {
    PointResult p;
    p.policy = policy;
    p.concurrency = users;
    p.throughput = out_tok_s;
    p.input_throughput = in_tok_s;
    p.n_requests = 10;
    sketch_add(p.dist.tpot, tpot, 10);
    sketch_add(p.dist.ttft, 0.25, 10);
    p.mean_prompt_len = 100;
    p.mean_output_len = 50;
    return p;
}

}  // namespace

// [SECTION] frontier and InferenceX ----------------------------------------------

TEST(Frontier, ParetoPointsInterpolationAndAreaMatchAHandWorkedFrontier) {
    // (15, 70) is beaten by (20, 80), (5, 90) and (8, 100) by (10, 100), which comes twice and is kept
    // once; NaN points are left out
    const Frontier f = frontier_pareto({10, 20, 15, 30, 5, NAN, 8, 10}, {100, 80, 70, 40, 90, 1, 100, 100});
    EXPECT_EQ(f.x, (std::vector<double>{10, 20, 30}));
    EXPECT_EQ(f.y, (std::vector<double>{100, 80, 40}));
    double y = 0;
    ASSERT_TRUE(frontier_at(f, 15, &y));
    EXPECT_DOUBLE_EQ(y, 90);
    ASSERT_TRUE(frontier_at(f, 25, &y));
    EXPECT_DOUBLE_EQ(y, 60);
    ASSERT_TRUE(frontier_at(f, 30, &y));
    EXPECT_DOUBLE_EQ(y, 40);
    ASSERT_TRUE(frontier_at(f, 10, &y));
    EXPECT_DOUBLE_EQ(y, 100);
    EXPECT_FALSE(frontier_at(f, 9.99, &y)) << "no extrapolation";
    EXPECT_FALSE(frontier_at(f, 31, &y));
    // 10 x (100 + 80) / 2 + 10 x (80 + 40) / 2
    EXPECT_DOUBLE_EQ(frontier_area(f), 1500);
    EXPECT_DOUBLE_EQ(frontier_area(frontier_pareto({3}, {4})), 0);
}

TEST(InferenceX, APointCarriesTheIdentityThroughputsAndInteractivityAsOneOverTpot) {
    const Scenario sc = report_scenario();
    std::vector<Policy> policies(2);
    policies[0].name = "ar";
    policies[1].name = "dspark";
    SweepResult r;
    r.loads = {1, 8};
    // ar: 1 user at 1 / 0.04 = 25 tok/s/user, 8 at 1 / 0.08 = 12.5; dspark: 50 and 20
    r.points = {point("ar", 1, 100, 60, 0.04), point("ar", 8, 400, 240, 0.08), point("dspark", 1, 200, 60, 0.02),
                point("dspark", 8, 600, 240, 0.05)};
    std::ostringstream out;
    report_inferencex(out, sc, policies, r, "v1");
    const json j = json::parse(out.str());
    ASSERT_EQ(j["results"].size(), 4u);
    const json& p = j["results"][2];
    EXPECT_EQ(p["hw"], "h100-sxm");
    EXPECT_EQ(p["conc"], 1);
    EXPECT_EQ(p["model"], "m");
    EXPECT_EQ(p["framework"], "specplan-sim");
    EXPECT_EQ(p["precision"], "fp8");
    EXPECT_EQ(p["spec_decoding"], "dspark");
    EXPECT_EQ(j["results"][0]["spec_decoding"], "none");
    EXPECT_EQ(p["disagg"], false);
    EXPECT_EQ(p["isl"], 100.0);
    EXPECT_EQ(p["osl"], 50.0);
    EXPECT_EQ(p["tp"], 2);
    EXPECT_DOUBLE_EQ(p["tput_per_gpu"].get<double>(), 260);
    EXPECT_DOUBLE_EQ(p["output_tput_per_gpu"].get<double>(), 200);
    EXPECT_DOUBLE_EQ(p["input_tput_per_gpu"].get<double>(), 60);
    EXPECT_DOUBLE_EQ(p["median_ttft"].get<double>(), 0.25);
    for (const char* stat : {"mean", "median", "p90", "p99", "p99.9"}) {
        EXPECT_NEAR(p[std::string(stat) + "_tpot"].get<double>(), 0.02, 1e-12) << stat;
        EXPECT_NEAR(p[std::string(stat) + "_intvty"].get<double>(), 1000 / 20.0, 1e-9) << stat << ": 1000 / TPOT ms";
    }
    // frontiers in (median_intvty, tput_per_gpu): ar (12.5, 640), (25, 160); dspark (20, 840), (50, 260)
    const json& f = j["frontier"];
    EXPECT_EQ(f["intvty_grid"], json::parse("[10, 20, 30, 40, 50]"));
    const json& ar = f["policies"][0];
    const json& ds = f["policies"][1];
    EXPECT_NEAR(ar["area"].get<double>(), 12.5 * (640 + 160) / 2, 1e-6);
    EXPECT_NEAR(ds["area"].get<double>(), 30 * (840 + 260) / 2, 1e-6);
    // ar at 20: 640 + (20 - 12.5) / 12.5 x (160 - 640) = 352; dspark at 30: 840 - 10 / 30 x 580
    EXPECT_EQ(ar["tput_per_gpu_at_grid"][0], nullptr);
    EXPECT_NEAR(ar["tput_per_gpu_at_grid"][1].get<double>(), 352, 1e-6);
    EXPECT_EQ(ar["tput_per_gpu_at_grid"][2], nullptr);
    EXPECT_NEAR(ds["tput_per_gpu_at_grid"][2].get<double>(), 840 - 580.0 / 3, 1e-6);
    EXPECT_NEAR(ds["tput_per_gpu_at_grid"][4].get<double>(), 260, 1e-6);
}

// [SECTION] Markdown -------------------------------------------------------------

TEST(Markdown, TheSweepIsATableWithARowPerPointAndTheCapacityBelow) {
    Scenario sc = report_scenario();
    SweepResult r;
    r.loads = {4};
    PointResult p = point("a|b", 4, 1234.4, 500, 0.01);
    p.per_user.mean = 80.04;
    p.per_user.p90 = 70.06;
    p.ttft.p90 = 0.1234;
    p.tpot.p90 = 0.01234;
    p.tau = 2.5;
    p.waste = 0.125;
    p.kv_use = 0.5;
    p.unstable = true;
    r.points = {p};
    Capacity c;
    c.policy = "a|b";
    c.met = true;
    c.bounded = true;
    c.load = 4;
    c.throughput = 1234.4;
    c.binding = SLO_TTFT;
    r.capacity = {c};
    std::ostringstream out;
    report_markdown(out, sc, r);
    const std::string md = out.str();
    EXPECT_NE(md.find("| policy | users | tok/s/GPU | input tok/s/GPU | tok/s/user mean | tok/s/user p90 | "
                      "TTFT p90 (ms) | TPOT p90 (ms) | τ (tok/step) | waste (%) | KV (%) |  |\n"
                      "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :--- |\n"
                      "| a\\|b | 4 | 1234 | 500 | 80.0 | 70.1 | 123 | 12.3 | 2.50 | 12.5 | 50 | UNSTABLE |\n"),
              std::string::npos)
        << md;
    EXPECT_NE(md.find("| a\\|b | 4 | 1234 | one more misses TTFT |\n"), std::string::npos) << md;
}

// [SECTION] plots ----------------------------------------------------------------

namespace {

// A minimal XML well-formedness check: one root; tags nest and close in
// order; attribute values quoted; '<' and '&' only as markup or entities.
bool xml_well_formed(const std::string& s, std::string* why) {
    std::vector<std::string> open;
    size_t i = 0, roots = 0;
    if (s.compare(0, 5, "<?xml") == 0) i = s.find("?>") + 2;
    auto name_at = [&](size_t& k) {
        size_t b = k;
        while (k < s.size() && (std::isalnum(static_cast<unsigned char>(s[k])) || s[k] == '-' || s[k] == ':' || s[k] == '_'))
            k++;
        return s.substr(b, k - b);
    };
    while (i < s.size()) {
        if (s[i] == '&') {
            const size_t semi = s.find(';', i);
            const std::string ent = semi == std::string::npos ? "" : s.substr(i, semi - i + 1);
            if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
                return *why = "bad entity at " + std::to_string(i), false;
            i = semi + 1;
            continue;
        }
        if (s[i] != '<') {
            if (open.empty() && !std::isspace(static_cast<unsigned char>(s[i])))
                return *why = "text outside the root", false;
            i++;
            continue;
        }
        i++;
        if (s[i] == '/') {
            i++;
            const std::string n = name_at(i);
            if (open.empty() || open.back() != n || s[i] != '>') return *why = "bad close </" + n + ">", false;
            open.pop_back();
            i++;
            continue;
        }
        const std::string n = name_at(i);
        if (n.empty()) return *why = "bad tag at " + std::to_string(i), false;
        if (open.empty() && ++roots > 1) return *why = "two roots", false;
        while (true) {  // attributes
            while (std::isspace(static_cast<unsigned char>(s[i]))) i++;
            if (s[i] == '>' || (s[i] == '/' && s[i + 1] == '>')) break;
            const std::string a = name_at(i);
            if (a.empty() || s[i] != '=' || s[i + 1] != '"') return *why = "bad attribute in <" + n + ">", false;
            const size_t end = s.find('"', i + 2);
            if (end == std::string::npos || s.substr(i + 2, end - i - 2).find('<') != std::string::npos)
                return *why = "bad attribute value in <" + n + ">", false;
            i = end + 1;
        }
        if (s[i] == '/') i += 2;
        else {
            open.push_back(n);
            i++;
        }
    }
    if (!open.empty()) return *why = "<" + open.back() + "> not closed", false;
    return roots == 1 || (*why = "no root", false);
}

// The tiny chart the layout rule is worked out for: x in [10, 40] from zero
// -> step 10 (40 / 6 = 6.7 rounds up to 10), axis [0, 40]; y in [100, 900]
// from zero -> step 200 (150 rounds up), axis [0, 1000]. The area runs from
// x 72 to 800 - 20 = 780 (708 px) and y 36 to 480 - 52 = 428 (392 px).
PlotChart tiny_chart() {
    PlotChart c;
    c.title = "T <&>";
    c.x_label = "x (tok/s/user)";
    c.y_label = "y (tok/s/GPU)";
    c.series.push_back({"a", {10, 20, 40}, {100, 500, 900}, plot_palette(0)});
    c.refs.push_back({true, 30, "SLA"});
    return c;
}

}  // namespace

TEST(Plot, TheSvgIsWellFormedXmlWithTheSeriesAtTheLayoutsPixels) {
    std::ostringstream out;
    plot_write_svg(out, plot_draw({tiny_chart()}));
    const std::string svg = out.str();
    std::string why;
    EXPECT_TRUE(xml_well_formed(svg, &why)) << why;
    EXPECT_NE(svg.find("width=\"800\" height=\"480\""), std::string::npos);
    // (10, 100) -> (72 + 708 / 4, 428 - 392 / 10) = (249, 388.8); (20, 500) -> (426, 232); (40, 900) -> (780, 75.2)
    EXPECT_NE(svg.find("<polyline points=\"249,388.8 426,232 780,75.2\""), std::string::npos) << svg;
    EXPECT_NE(svg.find("<circle cx=\"426\" cy=\"232\" r=\"3\" fill=\"#5aa0eb\" data-series=\"a\"/>"), std::string::npos);
    // the SLA at x = 30: 72 + 708 x 3 / 4 = 603, across the area, in the SLO colour
    EXPECT_NE(svg.find("<polyline points=\"603,36 603,428\" stroke-linejoin=\"round\" fill=\"none\" stroke=\"#e65050\""),
              std::string::npos);
    EXPECT_NE(svg.find(">T &lt;&amp;&gt;</text>"), std::string::npos) << "text escaped";
    EXPECT_NE(svg.find(">1k</text>"), std::string::npos) << "the y axis ends at a whole step";
}

TEST(Plot, ThePngHasTheSignatureTheSizeAndTheSeriesColourAtAMarker) {
    std::ostringstream out;
    plot_write_png(out, plot_draw({tiny_chart(), tiny_chart()}));
    const std::string png = out.str();
    ASSERT_GT(png.size(), 33u);
    EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    auto be32 = [&](size_t at) {
        return (uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
               (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3]));
    };
    EXPECT_EQ(png.substr(12, 4), "IHDR");
    EXPECT_EQ(be32(16), 1600u) << "two panels side by side";
    EXPECT_EQ(be32(20), 480u);
    // decode and read pixels: the marker of (20, 500) in the second panel is at (800 + 426, 232)
    std::istringstream in(png);
    auto read = [](void* closure, unsigned char* data, unsigned int n) {
        auto* s = static_cast<std::istringstream*>(closure);
        s->read(reinterpret_cast<char*>(data), n);
        return s->gcount() == std::streamsize(n) ? CAIRO_STATUS_SUCCESS : CAIRO_STATUS_READ_ERROR;
    };
    cairo_surface_t* img = cairo_image_surface_create_from_png_stream(read, &in);
    ASSERT_EQ(cairo_surface_status(img), CAIRO_STATUS_SUCCESS);
    cairo_surface_flush(img);
    const unsigned char* px = cairo_image_surface_get_data(img);
    const int stride = cairo_image_surface_get_stride(img);
    auto rgb = [&](int x, int y) {  // cairo's ARGB32 is native-endian: B, G, R, A in memory on x86
        const unsigned char* p = px + y * stride + 4 * x;
        return std::vector<int>{p[2], p[1], p[0]};
    };
    const Rgba c = plot_palette(0);
    EXPECT_EQ(rgb(800 + 426, 232), (std::vector<int>{c.r, c.g, c.b}));
    EXPECT_EQ(rgb(426, 232), (std::vector<int>{c.r, c.g, c.b}));
    EXPECT_EQ(rgb(3, 3), (std::vector<int>{PLOT_BACKGROUND.r, PLOT_BACKGROUND.g, PLOT_BACKGROUND.b}));
    // inside the area, clear of the grid (x = 72 + 177 k, y = 36 + 78.4 k) and of the series: the area colour
    EXPECT_EQ(rgb(100, 300), (std::vector<int>{PLOT_AREA.r, PLOT_AREA.g, PLOT_AREA.b}));
    cairo_surface_destroy(img);
}

TEST(Plot, AnAxisSpansWholeStepsFromZero) {
    const Axis a = plot_axis(130, 910, true);
    EXPECT_EQ(a.lo, 0);
    EXPECT_EQ(a.hi, 1000);  // 910 / 6 = 152 -> step 200
    const Axis b = plot_axis(1, 7, false, true);
    EXPECT_EQ(b.lo, 1);
    EXPECT_EQ(b.hi, 7);
}

// [SECTION] command line ---------------------------------------------------------

TEST(ExportCli, SweepWritesPlotsInferenceXAndMarkdownAndSimWritesATrace) {
    ScratchDir dir;
    const std::string sc = std::string(SPECPLAN_SOURCE_DIR) + "/scenarios/teaching.toml";
    CliResult r = cli_run(dir, "sweep " + sc + " --concurrency 1,4 --policies ar,fixed:2 --requests 60 --warmup 10 "
                               "--plot " + dir.file("plots") + " --inferencex " + dir.file("ix.json") +
                               " --format md");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("| policy | users |"), std::string::npos) << r.out;
    for (const char* name : {"frontier", "latency", "acceptance"}) {
        EXPECT_EQ(slurp(dir.file(std::string("plots/") + name + ".svg")).substr(0, 5), "<?xml") << name;
        EXPECT_EQ(slurp(dir.file(std::string("plots/") + name + ".png")).substr(1, 3), "PNG") << name;
    }
    const json ix = json::parse(slurp(dir.file("ix.json")));
    EXPECT_EQ(ix["results"].size(), 4u);
    r = cli_run(dir, "sim " + sc + " --concurrency 2 --requests 20 --warmup 5 --trace-out " + dir.file("t.json"));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_GT(json::parse(slurp(dir.file("t.json")))["traceEvents"].size(), 100u);
    r = cli_run(dir, "sweep " + sc + " --format xml");
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.err_lines(), 1) << r.err;
}
