// trace_aiperf.cpp: AIPerf records; the format is in trace_aiperf.h.
#include "traces/trace_aiperf.h"

#include "traces/trace_vllm.h"

namespace sp {

using json = nlohmann::json;

// metrics.<tag>.value of a records line, or nullptr. AIPerf writes each
// per-request metric as {"value": v, "unit": u}.
static const json* metric_value(const json& rec, const char* tag) {
    const json* m = import_find(rec, "metrics");
    if (!m || !m->is_object()) return nullptr;
    const json* t = import_find(*m, tag);
    return t && t->is_object() ? import_find(*t, "value") : nullptr;
}

AiperfRead aiperf_records_read(std::istream& in, const std::string& name, const ImportOptions& opt, size_t max_line) {
    AiperfRead out;
    import_json_records(in, name, max_line, [&](int64_t line, const json& j) {
        const json* sd = import_find(j, "spec_decode_acceptance");
        if (!sd) {
            out.skipped++;
            return;
        }
        ImportedRequest q;
        q.line = line;
        q.domain = import_domain(name, line, j, opt);
        if (const json* v = metric_value(j, "input_sequence_length"))
            q.prompt_len = static_cast<int>(import_int(name, line, "metrics.input_sequence_length.value", *v, 0, 1 << 30));
        if (const json* v = metric_value(j, "output_sequence_length"))
            q.output_len = static_cast<int>(import_int(name, line, "metrics.output_sequence_length.value", *v, 1, 1 << 30));
        if (sd->is_object())
            if (const json* c = import_find(*sd, "completion_tokens"))
                q.output_len = static_cast<int>(
                    import_int(name, line, "spec_decode_acceptance.completion_tokens", *c, 1, 1 << 30));
        q.steps = spec_decode_steps(name, line, "spec_decode_acceptance", *sd,
                                    static_cast<uint64_t>(line) << 32 | out.requests.size());
        if (out.engine.empty())
            if (const json* e = import_find(*sd, "engine"); e && e->is_string()) out.engine = e->get<std::string>();
        out.requests.push_back(std::move(q));
    });
    if (out.requests.empty())
        import_fail(name, 0, "spec_decode_acceptance",
                    "records with spec-decode acceptance (profile_export.jsonl at --export-level records)",
                    std::to_string(out.skipped) + " records without it");
    return out;
}

}  // namespace sp
