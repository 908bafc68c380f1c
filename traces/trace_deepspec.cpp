// trace_deepspec.cpp: DeepSpec confidence records; the format is in trace_deepspec.h.
#include "traces/trace_deepspec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

namespace sp {

using json = nlohmann::json;

// <dataset> of DIR/<dataset>/confidence_records.jsonl, or "default".
static std::string dataset_of(const std::string& path) {
    std::string d = std::filesystem::path(path).parent_path().filename().string();
    return d.empty() || d == "." || d == ".." ? "default" : d;
}

ImportSummary deepspec_import(TraceDb& db, std::istream& in, const std::string& name, const ImportOptions& opt,
                              size_t max_line) {
    std::vector<std::vector<float>> logits;
    std::vector<uint8_t> lengths;
    std::vector<std::vector<uint8_t>> labels;
    int longest = 0;
    import_json_records(in, name, max_line, [&](int64_t line, const json& j) {
        const json* z = import_find(j, "logits");
        const json* y = import_find(j, "labels");
        if (!z) import_fail(name, line, "logits", "an array of raw confidence logits", "nothing");
        if (!y) import_fail(name, line, "labels", "an array of 0/1 accept-prefix labels", "nothing");
        if (!z->is_array() || z->empty() || z->size() > size_t(TRACE_MAX_GAMMA))
            import_fail(name, line, "logits", "an array of 1.." + std::to_string(TRACE_MAX_GAMMA) + " numbers",
                        json_describe(*z));
        const std::vector<int> mask = import_int_array(name, line, "labels", *y, 0, 1);
        if (mask.size() != z->size())
            import_fail(name, line, "labels", "an array of " + std::to_string(z->size()) + " entries (as logits)",
                        json_describe(*y));
        std::vector<float> row;
        for (size_t k = 0; k < z->size(); k++) {
            const json& v = (*z)[k];
            const double d = v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
            if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max())
                import_fail(name, line, "logits[" + std::to_string(k) + "]", "a finite float32 number", json_describe(v));
            row.push_back(static_cast<float>(d));
            if (k > 0 && mask[k] == 1 && mask[k - 1] == 0)
                import_fail(name, line, "labels[" + std::to_string(k) + "]",
                            "0 after a 0 (an accept-prefix mask: slot k is accepted only with slots 1..k-1)", "1");
        }
        if (opt.gamma > 0 && static_cast<int>(row.size()) > opt.gamma)
            import_fail(name, line, "logits", "at most --gamma " + std::to_string(opt.gamma) + " slots",
                        json_describe(*z));
        longest = std::max(longest, static_cast<int>(row.size()));
        lengths.push_back(static_cast<uint8_t>(row.size()));
        logits.push_back(std::move(row));
        labels.emplace_back(mask.begin(), mask.end());
        if (logits.size() >= size_t(std::numeric_limits<int>::max() / TRACE_MAX_GAMMA))
            import_fail(name, line, "records", "fewer proposals than fit one request", "more");
    });
    if (logits.empty()) import_fail(name, 0, "records", "at least one proposal", "none");

    ImportSummary sum;
    sum.gamma = opt.gamma > 0 ? opt.gamma : longest;
    const size_t G = static_cast<size_t>(sum.gamma), n = logits.size();
    Positions p;
    p.gamma = sum.gamma;
    p.n = static_cast<int>(n);
    p.beta.assign(n * G, 0.0f);  // slots past L: never read (verified = L)
    p.conf_logit.assign(n * G, 0.0f);
    p.conf_prob.assign(n * G, 0.0f);
    p.verified = lengths;
    for (size_t t = 0; t < n; t++)
        for (size_t k = 0; k < logits[t].size(); k++) {
            p.beta[t * G + k] = labels[t][k];
            p.conf_logit[t * G + k] = logits[t][k];
            p.conf_prob[t * G + k] = static_cast<float>(1.0 / (1.0 + std::exp(-double(logits[t][k]))));
        }

    TraceTxn txn(db);
    Run run = import_run(opt, "deepspec", name, sum.gamma);
    sum.run_id = trace_db_begin_run(db, run);
    Request q;
    q.run_id = sum.run_id;
    q.domain = opt.domain.empty() ? dataset_of(name) : opt.domain;
    q.output_len = p.n;
    trace_db_append_request(db, q);
    p.request_id = q.id;
    trace_db_append_positions(db, p);
    trace_db_finish_run(db, sum.run_id);
    txn.commit();
    sum.requests = 1;
    sum.positions = static_cast<int64_t>(n);
    return sum;
}

}  // namespace sp
