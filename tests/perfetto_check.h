// perfetto_check.h: what a Chrome/Perfetto trace must hold, checked on the
// files report_perfetto.h writes (test_report_perfetto, test_live).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

using json = nlohmann::json;

// The file's traceEvents; fails the test when it is not {"traceEvents": [...]}.
inline json trace_of(const std::string& text) {
    json j = json::parse(text);  // throws on invalid JSON
    EXPECT_TRUE(j.is_object());
    EXPECT_TRUE(j.contains("traceEvents") && j["traceEvents"].is_array());
    return j["traceEvents"];
}

inline int64_t ns_of(const json& micros) { return std::llround(micros.get<double>() * 1000); }

// The trace-event format's rules this writer promises: the fields each phase
// needs, and on every (pid, tid) complete slices in time order that either
// nest inside the one open or start after it ended. Returns the number of
// slices checked.
inline int check_valid(const json& events) {
    std::map<std::pair<int, int>, std::vector<int64_t>> open;  // ends of the slices enclosing the next
    std::map<std::pair<int, int>, int64_t> last_start;
    int slices = 0;
    for (const json& e : events) {
        EXPECT_TRUE(e.contains("name") && e["name"].is_string()) << e;
        EXPECT_TRUE(e.contains("ph") && e["ph"].is_string()) << e;
        EXPECT_TRUE(e.contains("pid") && e["pid"].is_number_integer()) << e;
        const std::string ph = e["ph"];
        if (ph == "M") {
            EXPECT_TRUE(e["args"].is_object()) << e;
            continue;
        }
        EXPECT_TRUE(e["ts"].is_number() && e["ts"].get<double>() >= 0) << e;
        if (ph == "C") {
            EXPECT_TRUE(e["args"].is_object() && !e["args"].empty()) << e;
            for (const auto& [k, v] : e["args"].items()) EXPECT_TRUE(v.is_number()) << e;
            continue;
        }
        EXPECT_EQ(ph, "X") << "only complete slices, counters and metadata are written";
        EXPECT_TRUE(e.contains("tid") && e["tid"].is_number_integer()) << e;
        EXPECT_TRUE(e["dur"].is_number() && e["dur"].get<double>() >= 0) << e;
        const std::pair<int, int> track{e["pid"], e["tid"]};
        const int64_t s = ns_of(e["ts"]), end = s + ns_of(e["dur"]);
        auto it = last_start.find(track);
        if (it != last_start.end()) {
            EXPECT_GE(s, it->second) << "ts runs backwards on its track: " << e;
        }
        last_start[track] = s;
        std::vector<int64_t>& st = open[track];
        while (!st.empty() && s >= st.back()) st.pop_back();
        if (!st.empty()) {
            EXPECT_LE(end, st.back()) << "overlaps the slice it starts in: " << e;
        }
        st.push_back(end);
        slices++;
    }
    return slices;
}

