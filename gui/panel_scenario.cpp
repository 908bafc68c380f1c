// panel_scenario.cpp: the Scenario panel, the left column. Every widget edits
// one key of the draft's TOML table (scenario_edit.h) and marks the draft
// edited; the sweep re-runs after the debounce. What the panel does not
// show (a custom [cost.target], a batch table) is kept as loaded and saved.
#include <imgui.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "gui/app.h"
#include "gui/scenario_edit.h"
#include "simulator/cost.h"
#include "traces/models.h"

namespace sp {

// --- widgets bound to draft keys

static bool edit_int(AppState& app, const char* label, const char* key, int64_t def, int lo, int hi) {
    int v = static_cast<int>(draft_int(*app.draft, key, def));
    if (!ImGui::InputInt(label, &v, 1, 16)) return false;
    draft_set(*app.draft, key, static_cast<int64_t>(std::clamp(v, lo, hi)));
    app_mark_edited(app);
    return true;
}

static bool edit_number(AppState& app, const char* label, const char* key, double def, double lo, double hi,
                        const char* fmt, bool slider = false) {
    float v = static_cast<float>(draft_number(*app.draft, key, def));
    bool changed = slider ? ImGui::SliderFloat(label, &v, static_cast<float>(lo), static_cast<float>(hi), fmt)
                          : ImGui::InputFloat(label, &v, 0, 0, fmt);
    if (!changed) return false;
    draft_set(*app.draft, key, std::clamp(static_cast<double>(v), lo, hi));
    app_mark_edited(app);
    return true;
}

// A string key with a fixed set of values, as a combo; returns the chosen index.
static int edit_choice(AppState& app, const char* label, const char* key, const std::vector<std::string>& options,
                       int def) {
    const std::string cur = draft_string(*app.draft, key, options[def]);
    int idx = -1;
    for (size_t i = 0; i < options.size(); i++)
        if (options[i] == cur) idx = static_cast<int>(i);
    if (ImGui::BeginCombo(label, idx >= 0 ? options[idx].c_str() : cur.c_str())) {
        for (size_t i = 0; i < options.size(); i++)
            if (ImGui::Selectable(options[i].c_str(), static_cast<int>(i) == idx)) {
                draft_set(*app.draft, key, options[i]);
                app_mark_edited(app);
                idx = static_cast<int>(i);
            }
        ImGui::EndCombo();
    }
    return idx;
}

static bool edit_text(AppState& app, const char* label, const char* key, const std::string& def) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%s", draft_string(*app.draft, key, def).c_str());
    if (!ImGui::InputText(label, buf, sizeof buf, ImGuiInputTextFlags_EnterReturnsTrue) &&
        !ImGui::IsItemDeactivatedAfterEdit())
        return false;
    draft_set(*app.draft, key, std::string(buf));
    app_mark_edited(app);
    return true;
}

static std::string join_numbers(const std::vector<double>& v) {
    std::string s;
    char buf[32];
    for (size_t i = 0; i < v.size(); i++) {
        std::snprintf(buf, sizeof buf, "%s%g", i ? ", " : "", v[i]);
        s += buf;
    }
    return s;
}

// "1, 2, 4 8" -> {1, 2, 4, 8}; false on anything that is not a number.
static bool parse_numbers(const std::string& text, std::vector<double>* out) {
    std::string t = text;
    std::replace(t.begin(), t.end(), ',', ' ');
    std::istringstream in(t);
    out->clear();
    std::string tok;
    while (in >> tok) {
        char* end = nullptr;
        double v = std::strtod(tok.c_str(), &end);
        if (!end || *end || !std::isfinite(v)) return false;
        out->push_back(v);
    }
    return true;
}

// The sweep's loads: the list as text, and a geometric generator (from, to, points).
static void edit_loads(AppState& app, bool closed) {
    const char* key = closed ? "workload.concurrency" : "workload.rate";
    std::vector<double> loads = draft_numbers(*app.draft, key);
    char buf[1024];
    std::snprintf(buf, sizeof buf, "%s", join_numbers(loads).c_str());
    ImGui::InputText(closed ? "users" : "req/s", buf, sizeof buf);
    if (ImGui::IsItemDeactivatedAfterEdit()) {
        std::vector<double> v;
        if (parse_numbers(buf, &v)) {
            if (closed) {
                std::vector<int64_t> iv;
                for (double x : v) iv.push_back(static_cast<int64_t>(std::llround(x)));
                draft_set_ints(*app.draft, key, iv);
            } else {
                draft_set(*app.draft, key, v);
            }
            app_mark_edited(app);
        } else {
            app.scenario_error = app.draft->path + ": " + key + ": expected numbers separated by commas";
        }
    }
    float& lo = app.loads_from;
    float& hi = app.loads_to;
    int& n = app.loads_points;
    if (!loads.empty()) lo = static_cast<float>(loads.front()), hi = static_cast<float>(loads.back());
    // one labelled row: "from [1] to [256] points [12] [spread]"
    const char* what = closed ? "users" : "req/s";
    const float sp = ImGui::GetStyle().ItemInnerSpacing.x;
    ImGui::AlignTextToFramePadding();
    ImGui::TextUnformatted("from");
    ImGui::SameLine(0, sp);
    ImGui::PushItemWidth(52);
    ImGui::InputFloat("##from", &lo, 0, 0, "%g");
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("smallest load, %s", what);
    ImGui::SameLine(0, sp);
    ImGui::TextUnformatted("to");
    ImGui::SameLine(0, sp);
    ImGui::InputFloat("##to", &hi, 0, 0, "%g");
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("largest load, %s", what);
    ImGui::SameLine(0, sp);
    ImGui::TextUnformatted("points");
    ImGui::SameLine(0, sp);
    ImGui::PushItemWidth(36);
    ImGui::InputInt("##n", &n, 0);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("how many loads (2..200)");
    ImGui::PopItemWidth();
    ImGui::PopItemWidth();
    ImGui::SameLine();
    if (ImGui::Button("spread") && lo > 0 && hi > lo && n >= 2 && n <= 200) {
        // geometric spacing: equal steps in log(load), where the curves bend
        std::vector<double> v;
        for (int i = 0; i < n; i++) {
            double x = lo * std::pow(hi / lo, i / double(n - 1));
            if (closed) x = std::round(x);
            if (v.empty() || x > v.back()) v.push_back(x);
        }
        if (closed) {
            std::vector<int64_t> iv(v.begin(), v.end());
            draft_set_ints(*app.draft, key, iv);
        } else {
            draft_set(*app.draft, key, v);
        }
        app_mark_edited(app);
    }
    if (ImGui::IsItemHovered())
        ImGui::SetTooltip("replace the %s list above with `points` loads from `from` to `to`, geometrically spaced", what);
}

static void section_workload(AppState& app) {
    const int mode = edit_choice(app, "mode", "workload.mode", {"closed", "open"}, 0);
    edit_loads(app, mode != 1);
    if (mode == 1) {
        const int arr = edit_choice(app, "arrival", "workload.arrival", {"poisson", "gamma"}, 0);
        if (arr == 1) edit_number(app, "burstiness", "workload.burstiness", 1, 0.05, 20, "%.2f");
    } else {
        edit_number(app, "think ms", "workload.think_time_ms", 0, 0, 1e6, "%.0f");
    }
    edit_int(app, "requests", "workload.requests", 500, 1, 1000000);
    edit_int(app, "warmup", "workload.warmup", 100, 0, 1000000);
    const bool has_trace = !draft_string(*app.draft, "acceptance.trace", "").empty();
    const int lengths = edit_choice(app, "lengths", "workload.lengths", {"trace", "distribution"}, has_trace ? 0 : 1);
    if (lengths == 1) {
        for (const char* which : {"prompt_len", "output_len"}) {
            const std::string k = std::string("workload.") + which;
            ImGui::PushID(which);
            ImGui::TextDisabled("%s", which);
            const int dist = edit_choice(app, "dist", (k + ".dist").c_str(), {"fixed", "uniform", "lognormal"}, 1);
            // Only the chosen distribution's keys are allowed: drop the others.
            static const char* const keys[3][4] = {{"value"}, {"min", "max"}, {"median", "sigma", "min", "max"}};
            for (const char* other : {"value", "min", "max", "median", "sigma"}) {
                bool used = false;
                for (const char* u : keys[dist < 0 ? 1 : dist])
                    if (u && std::string(u) == other) used = true;
                if (!used && app.draft->table.at_path(k + "." + other)) {
                    draft_erase(*app.draft, k + "." + other);
                    app_mark_edited(app);
                }
            }
            if (dist == 0) edit_int(app, "tokens", (k + ".value").c_str(), 512, 1, 16777216);
            if (dist == 2) {
                edit_number(app, "median", (k + ".median").c_str(), 512, 1, 16777216, "%.0f");
                edit_number(app, "sigma", (k + ".sigma").c_str(), 0.8, 0, 4, "%.2f");
            }
            if (dist >= 1) {
                // shown for an absent key: the loader's prompt_len default (uniform 128..1024)
                edit_int(app, "min", (k + ".min").c_str(), 128, 1, 16777216);
                edit_int(app, "max", (k + ".max").c_str(), 1024, 1, 16777216);
            }
            ImGui::PopID();
        }
    }
}

// Domains, their weights and, for the parametric source, per-slot acceptance sliders.
static void section_domains(AppState& app, bool parametric) {
    toml::array* doms = draft_domains(*app.draft);
    const int gamma = static_cast<int>(draft_int(*app.draft, "engine.gamma", 4));
    if (!doms || doms->empty()) {
        ImGui::TextDisabled("one domain \"all\"");
        if (ImGui::SmallButton("add a domain")) {
            toml::table t;
            t.insert("name", "all");
            t.insert("weight", 1.0);
            if (parametric) {
                toml::array a;
                for (int k = 0; k < gamma; k++) a.push_back(0.8 * std::pow(0.95, k));
                t.insert("alpha", a);
            }
            toml::array arr;
            arr.push_back(std::move(t));
            draft_set(*app.draft, "workload.domain", std::string());   // creates [workload]
            app.draft->table.at_path("workload").as_table()->insert_or_assign("domain", std::move(arr));
            app_mark_edited(app);
        }
        return;
    }
    for (size_t i = 0; i < doms->size(); i++) {
        toml::table* t = (*doms)[i].as_table();
        if (!t) continue;
        ImGui::PushID(static_cast<int>(i));
        const std::string name = t->get("name") ? t->get("name")->value_or(std::string("?")) : "?";
        float w = static_cast<float>(t->get("weight") ? t->get("weight")->value_or(1.0) : 1.0);
        ImGui::SetNextItemWidth(120);
        if (ImGui::SliderFloat(name.c_str(), &w, 0.01f, 1.0f, "weight %.2f")) {
            t->insert_or_assign("weight", static_cast<double>(w));
            app_mark_edited(app);
        }
        if (parametric) {
            toml::array* a = t->get("alpha") ? t->get("alpha")->as_array() : nullptr;
            if (!a) {
                t->insert_or_assign("alpha", toml::array{});
                a = t->get("alpha")->as_array();
            }
            while (static_cast<int>(a->size()) < gamma) a->push_back(a->empty() ? 0.8 : (*a)[a->size() - 1].value_or(0.8));
            while (static_cast<int>(a->size()) > gamma) a->pop_back();
            // per-position sliders: alpha_k, the conditional acceptance of slot k
            for (int k = 0; k < gamma; k++) {
                float v = static_cast<float>((*a)[static_cast<size_t>(k)].value_or(0.0));
                if (k) ImGui::SameLine();
                ImGui::PushID(k);
                if (ImGui::VSliderFloat("##a", ImVec2(18, 80), &v, 0.0f, 1.0f, "")) {
                    a->replace(a->begin() + k, static_cast<double>(v));
                    app_mark_edited(app);
                }
                if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s: alpha_%d = %.3f", name.c_str(), k + 1, v);
                ImGui::PopID();
            }
        }
        ImGui::PopID();
    }
}

static void section_acceptance(AppState& app) {
    const int src = edit_choice(app, "source", "acceptance.source", {"trace", "parametric", "iid", "steps"}, 0);
    if (src == 0 || src == 3 || draft_string(*app.draft, "workload.lengths", "") == "trace") {
        edit_text(app, "trace", "acceptance.trace", "");
        // The runs of that store, read when the path changes.
        std::string path = draft_string(*app.draft, "acceptance.trace", "");
        if (!path.empty() && std::filesystem::path(path).is_relative())
            path = (std::filesystem::path(app.draft->path).parent_path() / path).lexically_normal().string();
        if (path != app.acc_runs_path) {
            app.acc_runs_path = path;
            app.acc_runs.clear();
            app.acc_runs_error.clear();
            try {
                TraceDb db = trace_db_open(path, TRACE_READ);
                app.acc_runs = trace_db_runs(db);
            } catch (const std::exception& e) {
                app.acc_runs_error = e.what();
            }
        }
        const int64_t run = draft_int(*app.draft, "acceptance.run", 0);
        char cur[160];
        std::snprintf(cur, sizeof cur, run == 0 ? "first complete run" : "run %lld", static_cast<long long>(run));
        if (ImGui::BeginCombo("run", cur)) {
            if (ImGui::Selectable("first complete run", run == 0)) {
                draft_erase(*app.draft, "acceptance.run");
                app_mark_edited(app);
            }
            for (const Run& r : app.acc_runs) {
                char label[200];
                std::snprintf(label, sizeof label, "run %lld: %s, gamma %d, %s", static_cast<long long>(r.id),
                              r.drafter_name.c_str(), r.gamma, r.created_at.c_str());
                if (ImGui::Selectable(label, r.id == run)) {
                    draft_set(*app.draft, "acceptance.run", r.id);
                    app_mark_edited(app);
                }
            }
            ImGui::EndCombo();
        }
        if (!app.acc_runs_error.empty()) ImGui::TextColored(ImVec4(1, 0.45f, 0.45f, 1), "%s", app.acc_runs_error.c_str());
    }
    if (src == 2) edit_number(app, "alpha", "acceptance.alpha", 0.8, 0, 1, "%.3f", true);
    if (src >= 1) edit_number(app, "kappa", "acceptance.kappa", 4, 0.01, 1000, "%.2f");
    ImGui::TextDisabled("domain mix");
    section_domains(app, src == 1);
}

static void section_cost(AppState& app) {
    const int model = edit_choice(app, "model", "cost.model", {"roofline", "measured"}, 0);
    if (model == 0) {
        edit_choice(app, "GPU", "cost.gpu", gpu_preset_names(), 0);
        if (app.draft->table.at_path("cost.target"))
            ImGui::TextDisabled("target: custom [cost.target] (edit the TOML)");
        else
            edit_choice(app, "model preset", "cost.preset", model_preset_names(), 1);
        // Whether the efficiencies and overheads below were fitted to a
        // measured profile (specplan calibrate-cost) or are assumptions: the
        // scenario's own word, as the CLI's context line prints it.
        const std::string cal = draft_string(*app.draft, "cost.calibrated", "");
        ImGui::PushTextWrapPos(0);
        ImGui::TextDisabled("%s", cal.empty() ? "uncalibrated: datasheet rates, assumed efficiencies"
                                              : ("calibrated to " + cal).c_str());
        ImGui::PopTextWrapPos();
        edit_number(app, "BW eff.", "cost.bw_efficiency", 0.8, 0.05, 1, "%.2f", true);
        edit_number(app, "FLOP eff.", "cost.flops_efficiency", 0.6, 0.05, 1, "%.2f", true);
        GpuSpec gpu;
        const double step_us = gpu_preset(draft_string(*app.draft, "cost.gpu", "h100-sxm"), &gpu) ? gpu.overhead_s * 1e6 : 0;
        edit_number(app, "overhead us", "cost.overhead_us", step_us, 0, 1e6, "%.0f");
        edit_number(app, "us a layer", "cost.overhead_us_per_layer", 0, 0, 1e6, "%.2f");
        const int dk = edit_choice(app, "drafter", "cost.drafter.kind", {"none", "mtp", "dspark"}, 2);
        if (dk >= 1) edit_int(app, "draft layers", "cost.drafter.layers", drafter_default_layers(DrafterKind(dk)), 1, 64);
    } else {
        edit_text(app, "profiles", "cost.profiles", "");
        edit_text(app, "profile GPU", "cost.profile_gpu", "");
        edit_text(app, "profile model", "cost.profile_model", "");
    }
}

static void section_engine(AppState& app) {
    edit_int(app, "gamma", "engine.gamma", 4, 1, 64);
    edit_int(app, "max seqs", "engine.max_seqs", 256, 1, 65536);
    edit_int(app, "max batch tok", "engine.max_batch_tokens", 8192, 2, 1 << 20);
    edit_int(app, "prefill chunk", "engine.prefill_chunk_tokens", 2048, 1, 1 << 20);
    edit_int(app, "draft max run", "engine.draft_max_running", 0, 0, 1 << 20);  // 0: speculation at every load
    edit_choice(app, "prefill", "engine.prefill", {"colocated", "disaggregated"}, 0);
    edit_int(app, "TP", "engine.tp", 1, 1, 64);
}

static const char* const FIXED_POLICIES[] = {"ar", "mtp1", "dspark", "dspark-async", "goodput", "draft-prob"};

static void section_policies(AppState& app) {
    std::vector<std::string> list = draft_strings(*app.draft, "policies.list");
    auto has = [&](const std::string& p) { return std::find(list.begin(), list.end(), p) != list.end(); };
    bool changed = false;
    for (const char* p : FIXED_POLICIES) {
        bool on = has(p);
        if (ImGui::Checkbox(p, &on)) {
            if (on)
                list.push_back(p);
            else
                list.erase(std::find(list.begin(), list.end(), p));
            changed = true;
        }
        if (p != FIXED_POLICIES[2]) ImGui::SameLine();
    }
    ImGui::NewLine();
    // fixed:K and threshold:T entries as editable text
    for (const char* prefix : {"fixed:", "threshold:"}) {
        std::string text;
        for (const std::string& p : list)
            if (p.rfind(prefix, 0) == 0) text += (text.empty() ? "" : ", ") + p.substr(std::string(prefix).size());
        char buf[256];
        std::snprintf(buf, sizeof buf, "%s", text.c_str());
        ImGui::InputText(prefix == std::string("fixed:") ? "fixed k" : "threshold t", buf, sizeof buf);
        if (ImGui::IsItemDeactivatedAfterEdit()) {
            std::vector<double> v;
            if (parse_numbers(buf, &v)) {
                list.erase(std::remove_if(list.begin(), list.end(),
                                          [&](const std::string& p) { return p.rfind(prefix, 0) == 0; }),
                           list.end());
                for (double x : v) {
                    char e[64];
                    std::snprintf(e, sizeof e, "%s%g", prefix, x);
                    list.push_back(e);
                }
                changed = true;
            }
        }
    }
    if (has("batch-table")) ImGui::TextDisabled("batch-table: its table is kept as loaded");
    if (changed) {
        draft_set(*app.draft, "policies.list", list);
        // a compare pair must stay inside the list
        std::vector<std::string> cmp = draft_strings(*app.draft, "policies.compare");
        if (cmp.size() == 2 && (!has(cmp[0]) || !has(cmp[1]))) draft_erase(*app.draft, "policies.compare");
        app_mark_edited(app);
    }
    ImGui::TextDisabled("headline: compare");
    std::vector<std::string> cmp = draft_strings(*app.draft, "policies.compare");
    if (cmp.size() != 2) cmp = {"", ""};
    for (int i = 0; i < 2; i++) {
        ImGui::PushID(i);
        ImGui::SetNextItemWidth(130);
        if (ImGui::BeginCombo(i ? "over" : "##a", cmp[i].empty() ? "(none)" : cmp[i].c_str())) {
            for (const std::string& p : list)
                if (ImGui::Selectable(p.c_str(), p == cmp[i])) {
                    cmp[i] = p;
                    if (!cmp[0].empty() && !cmp[1].empty() && cmp[0] != cmp[1]) {
                        draft_set(*app.draft, "policies.compare", cmp);
                        app_mark_edited(app);
                    }
                }
            ImGui::EndCombo();
        }
        if (!i) ImGui::SameLine();
        ImGui::PopID();
    }
}

static void section_slo(AppState& app) {
    edit_number(app, "per-user tok/s", "slo.per_user_tok_s", 0, 0, 1000, "%.0f", true);
    edit_number(app, "TTFT ms", "slo.ttft_ms", 0, 0, 20000, "%.0f");
}

void panel_scenario(AppState& app) {
    ImGui::PushItemWidth(-110);
    if (!app.scenario_error.empty()) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1, 0.5f, 0.5f, 1));
        ImGui::TextWrapped("%s", app.scenario_error.c_str());
        ImGui::PopStyleColor();
        ImGui::TextDisabled(app.sweep ? "(showing the last scenario that loaded)" : "");
        ImGui::Separator();
    }
    if (!app.file_error.empty() && app.dialog == DIALOG_NONE) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1, 0.5f, 0.5f, 1));
        ImGui::TextWrapped("%s", app.file_error.c_str());
        ImGui::PopStyleColor();
        ImGui::Separator();
    }
    edit_text(app, "name", "name", "");
    ImGui::SetNextItemWidth(-1);
    {
        char buf[512];
        std::snprintf(buf, sizeof buf, "%s", draft_string(*app.draft, "description", "").c_str());
        ImGui::PushStyleColor(ImGuiCol_Text, ImGui::GetStyleColorVec4(ImGuiCol_TextDisabled));
        ImGui::InputText("##description", buf, sizeof buf);
        ImGui::PopStyleColor();
        if (ImGui::IsItemDeactivatedAfterEdit()) {
            draft_set(*app.draft, "description", std::string(buf));
            app_mark_edited(app);
        }
    }
    edit_int(app, "seed", "seed", 1, 0, 2147483647);
    if (ImGui::CollapsingHeader("Workload", ImGuiTreeNodeFlags_DefaultOpen)) section_workload(app);
    if (ImGui::CollapsingHeader("Acceptance", ImGuiTreeNodeFlags_DefaultOpen)) section_acceptance(app);
    if (ImGui::CollapsingHeader("Cost model", ImGuiTreeNodeFlags_DefaultOpen)) section_cost(app);
    if (ImGui::CollapsingHeader("Engine")) section_engine(app);
    if (ImGui::CollapsingHeader("Policies", ImGuiTreeNodeFlags_DefaultOpen)) section_policies(app);
    if (ImGui::CollapsingHeader("SLO", ImGuiTreeNodeFlags_DefaultOpen)) section_slo(app);
    ImGui::PopItemWidth();
    ImGui::Spacing();
    if (ImGui::Button("Run now")) app_submit_now(app);
    ImGui::SameLine();
    if (ImGui::Button("Save")) app_save_scenario(app, app.scenario_path);
    ImGui::SameLine();
    if (ImGui::Button("Revert")) app_open_scenario(app, app.scenario_path);
}

}  // namespace sp
