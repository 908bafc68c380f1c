// scenario_edit.h: the scenario the dashboard edits, kept as its TOML table.
//
// Editing the table rather than a Scenario struct means the simulator's own
// loader (scenario_parse) validates every edit, keys the panel does not show
// survive a save, and a save is exactly what `specplan sweep` would read.
// toml++ does not keep comments, so a saved file has none.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>
#include <vector>

#include "simulator/scenario.h"

namespace sp {

struct ScenarioDraft {
    toml::table table;
    std::string path;   // the file it belongs to: anchors relative paths and names it in messages
};

// From a file or from text; sp::Error "<file>: ..." (one line) when the file
// cannot be read or is not TOML. Nothing is validated beyond TOML syntax.
ScenarioDraft draft_load(const std::string& path);
ScenarioDraft draft_parse(const std::string& text, const std::string& path);

std::string draft_text(const ScenarioDraft& d);

// The validated scenario: scenario_parse(draft_text(d), d.path), so errors
// read "<file>: <key>: expected ..., got ...".
Scenario draft_validate(const ScenarioDraft& d);

// Writes the draft to `path` (through a uniquely named temporary file beside
// it and a rename, so a failed save leaves the old file whole and concurrent
// saves of one path never collide) and makes it the draft's path.
// Relative file references (acceptance.trace, cost.profiles) are rewritten
// to stay valid from the new folder. sp::Error on failure.
void draft_save(ScenarioDraft& d, const std::string& path);

// Values by dotted key ("engine.gamma"); a missing or mistyped value gives `def`.
double draft_number(const ScenarioDraft& d, std::string_view key, double def);
int64_t draft_int(const ScenarioDraft& d, std::string_view key, int64_t def);
std::string draft_string(const ScenarioDraft& d, std::string_view key, const std::string& def);
bool draft_bool(const ScenarioDraft& d, std::string_view key, bool def);
std::vector<double> draft_numbers(const ScenarioDraft& d, std::string_view key);   // array of numbers
std::vector<std::string> draft_strings(const ScenarioDraft& d, std::string_view key);

// Setters create the tables on the way ("cost.drafter.layers" creates
// [cost] and [cost.drafter]); erase removes a key if present.
void draft_set(ScenarioDraft& d, std::string_view key, double v);
void draft_set(ScenarioDraft& d, std::string_view key, int64_t v);
void draft_set(ScenarioDraft& d, std::string_view key, const std::string& v);
void draft_set(ScenarioDraft& d, std::string_view key, bool v);
void draft_set(ScenarioDraft& d, std::string_view key, const std::vector<double>& v);
void draft_set_ints(ScenarioDraft& d, std::string_view key, const std::vector<int64_t>& v);
void draft_set(ScenarioDraft& d, std::string_view key, const std::vector<std::string>& v);
void draft_erase(ScenarioDraft& d, std::string_view key);

// [[workload.domain]] entries, the only array of tables a scenario has.
toml::array* draft_domains(ScenarioDraft& d);   // null when absent

}  // namespace sp
