// live.cpp: the serving loop of live.h.
#include "serve/live.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <list>
#include <thread>

#include "simulator/workload.h"
#include "traces/rng.h"

namespace sp {

namespace {

constexpr uint64_t STREAM_PROMPT = 24;  // rng_hash stream of a request's prompt (workload.cpp has 21-23)

int64_t to_ns(double s) { return static_cast<int64_t>(std::llround(s * 1e9)); }

struct Arrival {
    uint64_t key = 0;
    int64_t at_ns = 0;
    int user = -1;                   // closed loop: who sends it
};

struct Active {
    SpecRequest r;
    LiveRequest info;
    int64_t kv = 0;                  // tokens reserved
    int user = -1;
    size_t steps_seen = 0, out_seen = 0;
    int64_t last_emit_ns = -1;       // end of the iteration that last emitted for it; -1: its first token's time
};

// Prompts per scenario domain (indices into prompts), in file order.
std::vector<std::vector<int>> prompts_by_domain(const Scenario& sc, const std::vector<LivePrompt>& prompts) {
    std::vector<std::vector<int>> out(sc.workload.mix.size());
    for (size_t d = 0; d < sc.workload.mix.size(); d++)
        for (size_t i = 0; i < prompts.size(); i++)
            if (prompts[i].domain == sc.workload.mix[d].domain) out[d].push_back(int(i));
    return out;
}

// The largest output length the scenario can draw.
int max_output_len(const Scenario& sc, const AcceptanceData& acc) {
    if (sc.workload.lengths == LENGTHS_LOG) {
        int m = 1;
        for (const LogRequest& r : sc.workload.log->requests) m = std::max(m, r.output_len);
        return m;
    }
    if (sc.workload.lengths != LENGTHS_TRACE) return std::max(1, length_max(sc.workload.output_len));
    int m = 1;
    for (const TraceRequest& t : acc.requests) m = std::max(m, t.output_len);
    return m;
}

}  // namespace

void live_check(const Scenario& sc, const AcceptanceData& acc, const std::vector<LivePrompt>& prompts,
                int max_position) {
    const auto by = prompts_by_domain(sc, prompts);
    size_t longest = 0;
    for (size_t d = 0; d < by.size(); d++) {
        if (by[d].empty())
            throw Error(sc.path + ": workload.domain[" + std::to_string(d) + "].name: \"" +
                        sc.workload.mix[d].domain + "\" has no prompt in the prompts file");
        for (int i : by[d]) longest = std::max(longest, prompts[size_t(i)].ids.size());
    }
    const int64_t out = max_output_len(sc, acc);
    if (int64_t(longest) + out > max_position)
        throw Error(sc.path + ": the longest prompt (" + std::to_string(longest) + " tokens) and output (" +
                    std::to_string(out) + ") exceed the model's max_position_embeddings " + std::to_string(max_position));
    if (int64_t(longest) + out + sc.engine.gamma > sc.engine.kv_capacity_tokens)
        throw Error(sc.path + ": engine.kv_capacity_tokens: " + std::to_string(sc.engine.kv_capacity_tokens) +
                    " cannot hold the largest request's " + std::to_string(int64_t(longest) + out + sc.engine.gamma) +
                    " tokens (prompt + output + gamma)");
}

PointResult live_run_point(const Scenario& sc, const AcceptanceData& acc, Backend& target, Drafter* drafter,
                           const Policy& policy, double load, const std::vector<LivePrompt>& prompts,
                           const LiveOptions& o, LiveStats* stats) {
    live_check(sc, acc, prompts, target.config().max_position);
    if (o.replay && acc.requests.empty())
        throw Error(sc.path + ": acceptance.source: replaying accept decisions needs a trace");
    if (o.replay) acceptance_check_policies(sc, acc, {policy});  // draft-prob replays the trace's draft_prob
    const auto by_domain = prompts_by_domain(sc, prompts);
    // per trace request: beta, draft_prob and conf_prob rows (the policies read the trace's, as the simulator)
    std::vector<Positions> replay(o.replay ? acc.requests.size() : 0);
    for (size_t i = 0; i < replay.size(); i++) {
        const TraceRequest& t = acc.requests[i];
        replay[i].gamma = acc.trace_gamma;
        replay[i].n = t.output_len;
        const long from = long(t.offset), to = long(t.offset + size_t(t.output_len) * size_t(acc.trace_gamma));
        replay[i].beta.assign(acc.beta.begin() + from, acc.beta.begin() + to);
        if (!acc.draft_prob.empty())
            replay[i].draft_prob.assign(acc.draft_prob.begin() + from, acc.draft_prob.begin() + to);
        if (!acc.conf.empty()) replay[i].conf_prob.assign(acc.conf.begin() + from, acc.conf.begin() + to);
    }
    const Workload& wl = sc.workload;
    const int max_seqs = std::min(sc.engine.max_seqs, o.max_seqs > 0 ? o.max_seqs : target.n_seqs());

    SpecOptions so;
    so.policy = policy;
    so.gamma = policy.kind == POLICY_AR ? 0 : sc.engine.gamma;
    so.eos = -1;  // outputs run to the scenario's length
    so.seed = o.seed;
    so.step_time = o.step_time;
    so.step_time_adds_draft = o.step_time_adds_draft;
    so.token_budget = sc.engine.max_batch_tokens;
    so.prefill_chunk = sc.engine.prefill_chunk_tokens;
    so.draft_max_running = sc.engine.draft_max_running;
    Speculator spec(target, policy.kind == POLICY_AR ? nullptr : drafter, so);

    PointResult res;
    res.policy = policy.name;
    std::deque<Arrival> due;     // arrivals by time (closed loop: users' next requests, kept sorted)
    Rng gaps = rng_seed(sc.seed, WORKLOAD_STREAM_ARRIVALS);
    uint64_t next_key = 0;       // open loop: the arrival index
    std::vector<uint32_t> sent;  // closed loop: requests sent per user
    if (wl.mode == WORKLOAD_CLOSED) {
        res.concurrency = int(load);
        sent.assign(size_t(res.concurrency), 0);
        for (int u = 0; u < res.concurrency; u++) due.push_back({uint64_t(u) << 32, 0, u});
    } else {
        res.rate = load;
        due.push_back({next_key++, 0, -1});
    }
    auto schedule = [&](Arrival a) {
        auto at = std::upper_bound(due.begin(), due.end(), a.at_ns,
                                   [](int64_t t, const Arrival& x) { return t < x.at_ns; });
        due.insert(at, a);
    };

    const WindowSize ws = workload_window(wl, load);  // the simulator's, so both measure alike
    Window w = window_init(ws.warmup, ws.requests, sc.slo.per_user_tok_s, sc.slo.ttft_s);
    w.match_ages = ws.sized;
    w.kv_capacity = sc.engine.kv_capacity_tokens;
    std::deque<Arrival> waiting;
    std::list<Active> active;
    int64_t kv_used = 0;
    Sketch host;
    int64_t draft_ns = 0, iterations = 0, completed = 0;
    const int64_t graphs_before = target.graphs_captured();
    int64_t t_prev = spec.elapsed_ns();  // end of the previous iteration
    std::vector<PerfettoRequestStep> trace_reqs;  // o.trace: the iteration's decoding requests

    while (!w.closed()) {
        const int64_t now = spec.elapsed_ns();
        if (o.time_limit_s > 0 && now > to_ns(o.time_limit_s))
            throw Error("live: policy " + policy.name + " at load " + std::to_string(load) + ": the window did not close in " +
                        std::to_string(o.time_limit_s) + " s (" + std::to_string(w.n_requests) + " of " +
                        std::to_string(w.requests) + " measured)");
        // 1. arrivals due by now
        while (!due.empty() && due.front().at_ns <= now) {
            const Arrival a = due.front();
            due.pop_front();
            waiting.push_back(a);
            window_arrive(w, a.at_ns);
            if (workload_log_arrivals(wl)) {  // the log's times, as the simulator takes them
                const int64_t at = to_ns(workload_log_arrival_s(wl, load, next_key));
                schedule({next_key++, std::max(a.at_ns, at), -1});
            } else if (wl.mode == WORKLOAD_OPEN) {
                schedule({next_key++, a.at_ns + to_ns(workload_gap_s(wl, load, gaps)), -1});
            }
        }
        // 2. admission, FCFS: the head waits for room
        while (!waiting.empty() && int(active.size()) < max_seqs && spec.n_free_slots() > 0) {
            const Arrival& a = waiting.front();
            const RequestSpec rs = workload_request(sc, acc, a.key);
            const std::vector<int>& pool = by_domain[size_t(rs.domain)];
            const int pi = pool[size_t(rng_hash(sc.seed, STREAM_PROMPT, a.key) % pool.size())];
            const int64_t kv = int64_t(prompts[size_t(pi)].ids.size()) + rs.output_len + sc.engine.gamma;
            if (kv_used + kv > sc.engine.kv_capacity_tokens) break;
            Active& x = active.emplace_back();
            x.r.id = a.key;
            x.r.prompt = prompts[size_t(pi)].ids;
            x.r.max_new = rs.output_len;
            x.r.temperature = o.temperature;
            if (o.replay) x.r.replay = &replay[size_t(rs.trace_idx)];
            x.info.key = a.key;
            x.info.domain = rs.domain;
            x.info.prompt_index = pi;
            x.info.arrival_ns = a.at_ns;
            x.info.admitted_ns = now;
            x.kv = kv;
            x.user = a.user;
            kv_used += kv;
            spec.submit(&x.r);
            waiting.pop_front();
        }
        if (active.empty()) {  // idle until the next arrival
            if (!due.empty())
                std::this_thread::sleep_for(std::chrono::nanoseconds(std::max<int64_t>(0, due.front().at_ns - now)));
            t_prev = spec.elapsed_ns();
            continue;
        }
        // 3. one iteration
        const int64_t t_start = spec.elapsed_ns();
        spec.step();
        const IterationInfo& it = spec.last_iteration();
        const int64_t t_end = spec.elapsed_ns();
        iterations++;
        // 4. the window
        const bool counted =
            window_step(w, t_start, t_end, it.decode_seqs, it.decode_tokens + it.prefill_tokens, kv_used);
        const int64_t host_ns = std::max<int64_t>(1, (t_end - t_prev) - it.draft_ns - it.verify_ns);
        if (counted) {
            sketch_add(host, double(host_ns));
            draft_ns += it.draft_ns;
        }
        t_prev = t_end;
        int64_t emitted = 0;
        trace_reqs.clear();
        for (Active& x : active) {
            for (size_t k = x.steps_seen; k < x.r.steps.size(); k++) {
                x.r.steps[k].host_ns = host_ns;  // the iteration's: every request of it shares it
                if (o.trace) trace_reqs.push_back({x.info.key, x.r.steps[k].verify_len, x.r.steps[k].n_accepted});
                const int64_t last = x.last_emit_ns >= 0 ? x.last_emit_ns : x.r.first_token_ns;
                if (counted) window_request_step(w, x.r.steps[k].verify_len, x.r.steps[k].n_accepted, t_end - last);
                x.last_emit_ns = t_end;
            }
            x.steps_seen = x.r.steps.size();
            emitted += int64_t(x.r.output.size() - x.out_seen);
            x.out_seen = x.r.output.size();
        }
        if (counted) window_tokens(w, emitted);
        if (o.trace) {
            PerfettoStep ps;
            ps.start_ns = t_start;
            ps.draft_ns = it.draft_ns;
            ps.verify_ns = it.verify_ns;
            ps.host_ns = std::max<int64_t>(0, (t_end - t_start) - it.draft_ns - it.verify_ns);
            ps.decoding = it.decode_seqs;
            ps.batch_tokens = it.decode_tokens + it.prefill_tokens;
            ps.prefill_tokens = it.prefill_tokens;
            ps.kv_used = kv_used;
            perfetto_step(*o.trace, ps, trace_reqs.data(), int(trace_reqs.size()));
        }
        for (auto x = active.begin(); x != active.end();) {
            if (!x->r.done) {
                ++x;
                continue;
            }
            completed++;
            kv_used -= x->kv;
            x->info.first_token_ns = x->r.first_token_ns;
            x->info.done_ns = x->r.done_ns;
            window_complete(w, x->info.done_ns, x->info.arrival_ns, x->info.admitted_ns, x->info.first_token_ns,
                            int(x->r.output.size()), int(x->r.prompt.size()));
            if (o.trace)
                perfetto_request(*o.trace, {x->info.key, 0, x->info.domain, int(x->r.prompt.size()),
                                            int(x->r.output.size()), x->info.arrival_ns, x->info.admitted_ns,
                                            x->info.first_token_ns, x->info.done_ns});
            if (o.on_complete) {
                x->info.prompt = x->r.prompt;
                x->info.output = x->r.output;
                x->info.steps = x->r.steps;
                o.on_complete(x->info);
            }
            if (x->user >= 0) {
                const uint32_t n = ++sent[size_t(x->user)];
                schedule({uint64_t(x->user) << 32 | n,
                          x->info.done_ns + to_ns(workload_think_s(wl, sc.seed, x->info.key)), x->user});
            }
            x = active.erase(x);
        }
        if (o.progress) o.progress(w.n_requests, w.requests);
    }

    window_result(w, sc.engine.tp, &res);
    res.short_window = ws.short_window;
    if (stats) {
        stats->iterations = iterations;
        stats->completed = completed;
        stats->host_ns = summary_latency(host);
        stats->draft_fraction = w.busy_ns > 0 ? double(draft_ns) / double(w.busy_ns) : 0;
        stats->graph_captures = target.graphs_captured() - graphs_before;
    }
    return res;
}

}  // namespace sp
