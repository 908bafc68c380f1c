// sim.cpp: the event loop and the engine model of sim.h.
//
// [SECTION] state    requests, the event queue, the step being executed
// [SECTION] workload arrivals and completions
// [SECTION] engine   step start (admission, policy, prefill plan, cost) and step end
// [SECTION] run      the loop and the measurement window
#include "simulator/sim.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <queue>
#include <string>
#include <vector>

#include "policy/draft_prob.h"
#include "simulator/workload.h"

namespace sp {

// [SECTION] state ---------------------------------------------------------------

enum EventKind { EV_STEP_END, EV_ARRIVAL, EV_PREFILL_DONE };

struct Event {
    int64_t time;     // ns
    int cls;          // tie-break at equal time: step ends (0) before arrivals (1)
    uint64_t seq;     // scheduling order
    int kind;
    int arg;          // EV_ARRIVAL: the user (closed loop), -1 (open loop); EV_PREFILL_DONE: the pool slot
    bool operator>(const Event& o) const {
        if (time != o.time) return time > o.time;
        if (cls != o.cls) return cls > o.cls;
        return seq > o.seq;
    }
};

struct SimRequest {
    uint64_t key = 0;
    int user = -1;
    int domain = 0, trace_idx = -1;
    int prompt_len = 0, output_len = 0;
    int prefilled = 0;            // prompt tokens in the KV cache
    int generated = 0;            // output tokens emitted; the anchor is token generated - 1
    int64_t kv_reserved = 0;      // tokens held from admission to completion
    bool admitted = false;        // holds its KV reservation
    int64_t arrival_ns = 0, admitted_ns = 0, first_token_ns = 0;
    int64_t last_emit_ns = 0;     // when it last emitted a token (ITL)
    int64_t verified = 0, accepted = 0;  // drafts, for goodput's observed acceptance
    int n_steps = 0;              // decode steps taken
    std::vector<float> conf_hist; // (3, gamma): confidences of the last three steps, ring by n_steps
};

struct Sim {
    const Scenario& sc;
    const AcceptanceData& acc;
    const Policy& policy;
    SimObserver* obs;
    int gamma, draft_len;
    bool reads_conf;                  // the policy ranks drafts by confidence: draw every slot up front
    bool reads_q;                     // draft-prob: the recorded draft probabilities and the estimator
    DraftProbEstimator draft_est;     // draft-prob's, over every step of this point, as the engine's Speculator

    int64_t now = 0;
    uint64_t seq = 0;
    std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;

    std::vector<SimRequest> pool;     // request slots, reused: memory stays flat
    std::vector<int> free_slots;
    std::vector<int> waiting_fifo;    // pool indices, FCFS; head at waiting_head
    size_t waiting_head = 0;
    std::vector<int> prefilling;      // pool indices, admission order
    std::vector<int> running;         // pool indices, admission order
    int64_t kv_used = 0;
    std::vector<uint32_t> user_seq;   // closed loop: requests sent per user
    Rng arrivals;
    int64_t arrival_index = 0;
    double rate = 0;

    // the step in flight
    bool busy = false;
    int64_t step_start = 0;
    std::vector<int> step_decode;     // pool indices in batch order
    std::vector<int> ell, n_acc, max_len;
    std::vector<SlotDraws> draws;
    std::vector<float> conf, conf_stale;
    std::vector<float> draft_q;       // (R, gamma) draft-prob: recorded draft probabilities
    std::vector<double> alpha_hat;
    std::vector<uint64_t> keys;
    std::vector<std::pair<int, int>> step_prefill;  // (pool index, chunk tokens)
    int step_tokens = 0, step_prefill_tokens = 0;
    double step_draft_s = 0, step_forward_s = 0;
    // what the policy's StepTime needs
    double decode_context = 0;
    int policy_prefill = 0;           // prefill tokens the step carries with l = 0 for everyone
    int64_t pending_prefill = 0;      // prompt tokens not yet prefilled among prefilling requests

    // counters
    int64_t arrived = 0, done = 0;
    int remote_prefill = 0;           // disaggregated: prompts being prefilled elsewhere
    Window window;                    // the measurement (metrics.h), set by sim_run_point for its load
    // overload (sim.h), open loop
    int queue_cap = 0;                // 0: closed loop, no cap
    bool overflow = false;            // the cap was passed: the point stops
    int64_t in_system_open = 0, in_system_close = 0;  // arrived - done as the window opened, closed
    bool window_sized = false;        // workload_window sized it: an open loop's grows as it opens
    bool short_window = false;        // the window is shorter than the load needs (workload_window)

    Sim(const Scenario& s, const AcceptanceData& a, const Policy& p, SimObserver* o)
        : sc(s), acc(a), policy(p), obs(o), gamma(s.engine.gamma), draft_len(policy_draft_len(p, s.engine.gamma)),
          reads_conf(p.kind == POLICY_THRESHOLD || p.kind == POLICY_DSPARK || p.kind == POLICY_DSPARK_ASYNC),
          reads_q(p.kind == POLICY_DRAFT_PROB),
          arrivals(rng_seed(s.seed, WORKLOAD_STREAM_ARRIVALS)) {}

    void schedule(int64_t time, int cls, int kind, int arg) {
        assert(time >= now && "an event may not be scheduled in the past");
        events.push({time, cls, seq++, kind, arg});
    }
    int waiting_count() const { return static_cast<int>(waiting_fifo.size() - waiting_head); }
};

// The clock. Every duration enters it through span_ns and every event time
// is made by at(): a duration that is not a number of seconds in
// [0, MAX_SPAN_S], or an event past CLOCK_MAX_NS, is one sp::Error line
// naming the scenario and the key that set it, never a clamped or wrapped
// time. scenario_load's bounds keep real runs far inside both
// (scenarios/README.md: "the simulated clock").
static constexpr double MAX_SPAN_S = 1e9;                             // one duration, about 32 years
static constexpr int64_t CLOCK_MAX_NS = INT64_MAX - 1'000'000'000'000'000'000;  // 8.2e9 s

[[noreturn]] static void clock_error(const Sim& s, const char* key, const std::string& expected, double got_s) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g s", got_s);
    throw Error(s.sc.path + ": " + key + ": expected " + expected + ", got " + buf + " (policy " + s.policy.name +
                ")");
}

static int64_t span_ns(const Sim& s, double sec, const char* key, const char* what) {
    if (!(sec >= 0 && sec <= MAX_SPAN_S))
        clock_error(s, key, std::string(what) + " in [0, 1e+09] s, which the simulated clock holds", sec);
    return static_cast<int64_t>(std::llround(sec * 1e9));
}

// A step or an arrival gap: at least 1 ns, so time always moves.
static int64_t to_ns(const Sim& s, double sec, const char* key, const char* what) {
    return std::max<int64_t>(1, span_ns(s, sec, key, what));
}

static int64_t at(const Sim& s, int64_t span, const char* key) {
    if (span > CLOCK_MAX_NS - s.now)
        clock_error(s, key, "a run that ends within the simulated clock's 8.2e+09 s (shorten workload.requests)",
                    (static_cast<double>(s.now) + static_cast<double>(span)) * 1e-9);
    return s.now + span;
}

// [SECTION] workload --------------------------------------------------------------

// Disaggregated prefill: the prompt's chunks run back to back on a prefill
// replica of the same hardware, alone.
static double remote_prefill_s(const Sim& s, int prompt_len) {
    double t = 0;
    for (int done = 0; done < prompt_len;) {
        int chunk = std::min(s.sc.engine.prefill_chunk_tokens, prompt_len - done);
        BatchShape b;
        b.n_prefill_seqs = 1;
        b.n_prefill_tokens = chunk;
        b.prefill_context = done;
        t += cost_forward_s(s.sc.cost, b);
        done += chunk;
    }
    return t;
}

static void complete(Sim& s, int slot);

// The prompt is in a KV cache elsewhere and the first token is out; the
// request now waits for a place in the decode batch.
static void prefill_done(Sim& s, int slot) {
    SimRequest& r = s.pool[static_cast<size_t>(slot)];
    s.remote_prefill--;
    r.prefilled = r.prompt_len;
    r.generated = 1;
    r.first_token_ns = r.last_emit_ns = s.now;
    if (r.output_len == 1) complete(s, slot);
    else s.waiting_fifo.push_back(slot);
}

static void arrive(Sim& s, int user) {
    uint64_t key = user >= 0 ? (static_cast<uint64_t>(user) << 32 | s.user_seq[static_cast<size_t>(user)]++)
                             : static_cast<uint64_t>(s.arrival_index++);
    RequestSpec spec = workload_request(s.sc, s.acc, key);
    int slot;
    if (!s.free_slots.empty()) {
        slot = s.free_slots.back();
        s.free_slots.pop_back();
    } else {
        slot = static_cast<int>(s.pool.size());
        s.pool.emplace_back();
        s.pool.back().conf_hist.assign(static_cast<size_t>(3 * s.gamma), 0.0f);
    }
    SimRequest& r = s.pool[static_cast<size_t>(slot)];
    r.key = key;
    r.user = user;
    r.domain = spec.domain;
    r.trace_idx = spec.trace_idx;
    r.prompt_len = spec.prompt_len;
    r.output_len = spec.output_len;
    r.prefilled = 0;
    r.generated = 0;
    r.kv_reserved = static_cast<int64_t>(spec.prompt_len) + spec.output_len + s.gamma;
    r.arrival_ns = s.now;
    r.first_token_ns = 0;
    r.verified = r.accepted = 0;
    r.n_steps = 0;
    r.admitted = false;
    s.arrived++;
    window_arrive(s.window, s.now);
    if (s.queue_cap > 0 && s.waiting_count() + s.remote_prefill >= s.queue_cap) s.overflow = true;
    if (s.sc.engine.disaggregated_prefill) {
        s.remote_prefill++;
        s.schedule(at(s, to_ns(s, remote_prefill_s(s, r.prompt_len), "cost", "a prefill time"), "cost"), 1,
                   EV_PREFILL_DONE, slot);
    } else {
        s.waiting_fifo.push_back(slot);
    }
    if (user < 0) {
        int64_t gap = to_ns(s, workload_gap_s(s.sc.workload, s.rate, s.arrivals), "workload.rate", "an arrival gap");
        s.schedule(at(s, gap, "workload.rate"), 1, EV_ARRIVAL, -1);
    }
}

static void complete(Sim& s, int slot) {
    SimRequest& r = s.pool[static_cast<size_t>(slot)];
    s.done++;
    if (r.admitted) s.kv_used -= r.kv_reserved;
    if (s.obs) s.obs->on_complete({r.key, r.domain, r.prompt_len, r.output_len, r.arrival_ns, r.first_token_ns, s.now});
    const bool was_open = s.window.open(), was_closed = s.window.closed();
    window_complete(s.window, s.now, r.arrival_ns, r.admitted_ns, r.first_token_ns, r.output_len, r.prompt_len);
    if (!was_open && s.window.open()) {
        s.in_system_open = s.arrived - s.done;
        // An open loop's sized window measures ten completions per request in the system (workload_window).
        if (r.user < 0 && s.window_sized) {
            const int64_t need = int64_t(WINDOW_PER_USER) * s.in_system_open;
            if (need > WINDOW_OPEN_MAX) s.short_window = true;
            s.window.requests = static_cast<int>(std::clamp<int64_t>(need, s.window.requests, WINDOW_OPEN_MAX));
        }
    }
    if (!was_closed && s.window.closed()) s.in_system_close = s.arrived - s.done;
    if (r.user >= 0) {
        int64_t think = span_ns(s, workload_think_s(s.sc.workload, s.sc.seed, r.key), "workload.think_time_ms",
                                "a think time");
        s.schedule(at(s, think, "workload.think_time_ms"), 1, EV_ARRIVAL, r.user);
    }
    s.free_slots.push_back(slot);
}

// [SECTION] engine ----------------------------------------------------------------

static BatchShape batch_shape(const Sim& s, int decode_tokens, int prefill_tokens, int prefill_seqs,
                              double prefill_context) {
    BatchShape b;
    b.n_decode_seqs = static_cast<int>(s.step_decode.size());
    b.n_decode_tokens = decode_tokens;
    b.decode_context = s.decode_context;
    b.n_prefill_seqs = prefill_seqs;
    b.n_prefill_tokens = prefill_tokens;
    b.prefill_context = prefill_context;
    return b;
}

// Prefill tokens a forward of B decode tokens leaves room for.
static int prefill_room(const Sim& s, int decode_tokens) {
    int64_t room = std::min<int64_t>(s.sc.engine.prefill_chunk_tokens, s.sc.engine.max_batch_tokens - decode_tokens);
    return static_cast<int>(std::max<int64_t>(0, std::min(room, s.pending_prefill)));
}

// The policies' StepTime: the draft phase plus a forward of B decode tokens
// on top of the prefill this step would carry without drafts. Pricing
// against a fixed prefill matters: if drafts could push prefill out of the
// batch, extra verify tokens would look free exactly when the GPU is
// compute-bound, and no policy would ever cut verification under load.
static double step_seconds(const void* ctx, int /*n_seqs: the state's running set*/, int decode_tokens) {
    const Sim& s = *static_cast<const Sim*>(ctx);
    int p = s.policy_prefill;
    return s.step_draft_s + cost_forward_s(s.sc.cost, batch_shape(s, decode_tokens, p, p > 0 ? 1 : 0, 0));
}

static void admit(Sim& s) {
    while (s.waiting_count() > 0 &&
           static_cast<int>(s.running.size() + s.prefilling.size()) < s.sc.engine.max_seqs) {
        int slot = s.waiting_fifo[s.waiting_head];
        SimRequest& r = s.pool[static_cast<size_t>(slot)];
        if (s.kv_used + r.kv_reserved > s.sc.engine.kv_capacity_tokens) break;  // FCFS: the head waits
        s.kv_used += r.kv_reserved;
        r.admitted = true;
        r.admitted_ns = s.now;
        s.waiting_head++;
        if (r.prefilled == r.prompt_len && r.generated > 0) {  // prefilled elsewhere
            s.running.push_back(slot);
        } else {
            s.prefilling.push_back(slot);
            s.pending_prefill += r.prompt_len;
        }
    }
    if (s.waiting_head > 4096 && s.waiting_head * 2 > s.waiting_fifo.size()) {  // compact the FIFO
        s.waiting_fifo.erase(s.waiting_fifo.begin(), s.waiting_fifo.begin() + static_cast<long>(s.waiting_head));
        s.waiting_head = 0;
    }
}

static void start_step(Sim& s) {
    admit(s);
    const int G = s.gamma;
    const size_t R = s.running.size();
    if (R == 0 && s.prefilling.empty()) return;

    // 1. the decoding requests' drafts and the policy's choice
    s.step_decode = s.running;
    s.ell.assign(R, 0);
    s.max_len.resize(R);
    s.draws.resize(R);
    s.conf.resize(R * static_cast<size_t>(G));
    s.conf_stale.resize(R * static_cast<size_t>(G));
    s.alpha_hat.resize(R);
    if (s.reads_q) s.draft_q.resize(R * static_cast<size_t>(G));
    s.keys.resize(R);
    double context = 0;
    for (size_t i = 0; i < R; i++) {
        const SimRequest& r = s.pool[static_cast<size_t>(s.step_decode[i])];
        int t = r.generated - 1;
        if (s.reads_conf) acceptance_draw(s.acc, r.key, r.domain, r.trace_idx, t, 0, G, &s.draws[i]);
        else std::fill_n(s.draws[i].conf, G, 0.0f);
        std::copy_n(s.draws[i].conf, G, &s.conf[i * static_cast<size_t>(G)]);
        // two steps old: the ring row of step n_steps - 2, or this step's for a young request
        const float* stale = r.n_steps >= 2 ? &r.conf_hist[static_cast<size_t>(((r.n_steps - 2) % 3) * G)]
                                            : s.draws[i].conf;
        std::copy_n(stale, G, &s.conf_stale[i * static_cast<size_t>(G)]);
        s.max_len[i] = std::min(G, r.output_len - r.generated - 1);
        // Laplace estimate of the request's acceptance from what it has verified so far
        s.alpha_hat[i] = alpha_estimate(r.accepted, r.verified);
        if (s.reads_q) acceptance_draft_prob(s.acc, r.trace_idx, t, &s.draft_q[i * static_cast<size_t>(G)]);
        s.keys[i] = r.key;
        context += r.prompt_len + r.generated;
    }
    s.decode_context = R ? context / static_cast<double>(R) : 0;
    s.step_draft_s = R && s.draft_len > 0 ? cost_draft_s(s.sc.cost, static_cast<int>(R), s.draft_len, s.decode_context) : 0;
    s.policy_prefill = prefill_room(s, static_cast<int>(R));
    if (R > 0) {
        PolicyInput in;
        in.n = static_cast<int>(R);
        in.gamma = G;
        in.conf = s.conf.data();
        in.conf_stale = s.conf_stale.data();
        in.max_len = s.max_len.data();
        in.alpha_hat = s.alpha_hat.data();
        in.draft_prob = s.reads_q ? s.draft_q.data() : nullptr;
        in.estimator = &s.draft_est;
        in.token_budget = s.sc.engine.max_batch_tokens;
        in.step_time = StepTime{step_seconds, &s};
        policy_choose(s.policy, in, s.ell.data());
    }
    int decode_tokens = 0;
    for (size_t i = 0; i < R; i++) {
        assert(s.ell[i] >= 0 && s.ell[i] <= s.max_len[i] && "policy exceeded a request's cap");
        decode_tokens += 1 + s.ell[i];
        if (!s.reads_conf && s.ell[i] > 0) {  // only the verified slots' outcomes are needed
            const SimRequest& r = s.pool[static_cast<size_t>(s.step_decode[i])];
            acceptance_draw(s.acc, r.key, r.domain, r.trace_idx, r.generated - 1, 0, s.ell[i], &s.draws[i]);
        }
    }
    assert(decode_tokens <= s.sc.engine.max_batch_tokens && "policy exceeded the token budget");

    // 2. prefill chunks in the room B leaves, FCFS
    s.step_prefill.clear();
    int room = prefill_room(s, decode_tokens);
    double prefill_context = 0;
    for (int slot : s.prefilling) {
        if (room == 0) break;
        const SimRequest& r = s.pool[static_cast<size_t>(slot)];
        int chunk = std::min(room, r.prompt_len - r.prefilled);
        if (chunk <= 0) continue;
        s.step_prefill.push_back({slot, chunk});
        prefill_context += r.prefilled;
        room -= chunk;
    }
    int prefill_tokens = 0;
    for (auto [slot, chunk] : s.step_prefill) prefill_tokens += chunk;
    int prefill_seqs = static_cast<int>(s.step_prefill.size());
    if (prefill_seqs) prefill_context /= prefill_seqs;

    s.step_forward_s = cost_forward_s(s.sc.cost, batch_shape(s, decode_tokens, prefill_tokens, prefill_seqs, prefill_context));
    s.step_tokens = decode_tokens + prefill_tokens;
    s.step_prefill_tokens = prefill_tokens;
    s.step_start = s.now;
    s.busy = true;
    s.schedule(at(s, to_ns(s, s.step_draft_s + s.step_forward_s, "cost", "an iteration time"), "cost"), 0,
               EV_STEP_END, 0);
}

static void end_step(Sim& s) {
    const int G = s.gamma;
    const size_t R = s.step_decode.size();
    s.busy = false;
    const bool counted = window_step(s.window, s.step_start, s.now, static_cast<int>(R), s.step_tokens, s.kv_used);
    s.n_acc.assign(R, 0);
    int64_t emitted = 0;
    std::vector<int> finished;
    for (size_t i = 0; i < R; i++) {
        SimRequest& r = s.pool[static_cast<size_t>(s.step_decode[i])];
        int n = acceptance_count(s.acc, r.key, r.generated - 1, s.ell[i], s.draws[i]);
        s.n_acc[i] = n;
        r.generated += n + 1;
        r.verified += s.ell[i];
        r.accepted += n;
        if (s.reads_q) draft_prob_observe(s.draft_est, &s.draft_q[i * static_cast<size_t>(G)], s.ell[i], n);
        std::copy_n(s.draws[i].conf, G, &r.conf_hist[static_cast<size_t>((r.n_steps % 3) * G)]);
        r.n_steps++;
        emitted += n + 1;
        if (counted) window_request_step(s.window, s.ell[i], n, s.now - r.last_emit_ns);
        r.last_emit_ns = s.now;
        if (r.generated >= r.output_len) finished.push_back(s.step_decode[i]);
    }
    for (auto [slot, chunk] : s.step_prefill) {
        SimRequest& r = s.pool[static_cast<size_t>(slot)];
        r.prefilled += chunk;
        s.pending_prefill -= chunk;
        if (r.prefilled < r.prompt_len) continue;
        r.first_token_ns = r.last_emit_ns = s.now;  // the forward that completes the prompt yields the first token
        r.generated = 1;
        emitted += 1;
        s.prefilling.erase(std::find(s.prefilling.begin(), s.prefilling.end(), slot));
        if (r.output_len == 1) finished.push_back(slot);
        else s.running.push_back(slot);
    }
    if (counted) window_tokens(s.window, emitted);
    if (s.obs) {
        StepView v;
        v.start_ns = s.step_start;
        v.end_ns = s.now;
        v.gamma = G;
        v.n_decode = static_cast<int>(R);
        v.keys = s.keys.data();
        v.ell = s.ell.data();
        v.accepted = s.n_acc.data();
        v.conf = s.conf.data();
        v.draft_len = s.draft_len;
        v.batch_tokens = s.step_tokens;
        v.prefill_tokens = s.step_prefill_tokens;
        v.draft_s = s.step_draft_s;
        v.forward_s = s.step_forward_s;
        s.obs->on_step(v);
    }
    for (int slot : finished) {
        auto it = std::find(s.running.begin(), s.running.end(), slot);
        if (it != s.running.end()) s.running.erase(it);
        complete(s, slot);
    }
}

// [SECTION] run -------------------------------------------------------------------

int sim_queue_cap(const EngineConfig& e) {
    return static_cast<int>(std::clamp<int64_t>(16 * static_cast<int64_t>(e.max_seqs), 4096, 262144));
}

PointResult sim_run_point(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, double load,
                          SimObserver* observer) {
    acceptance_check_policies(sc, acc, {policy});
    Sim s(sc, acc, policy, observer);
    const Workload& w = sc.workload;
    const WindowSize ws = workload_window(w, load);
    s.window = window_init(ws.warmup, ws.requests, sc.slo.per_user_tok_s, sc.slo.ttft_s);
    s.window_sized = ws.sized;
    s.window.match_ages = ws.sized;
    s.window.kv_capacity = sc.engine.kv_capacity_tokens;
    s.short_window = ws.short_window;
    PointResult res;
    res.policy = policy.name;
    if (w.mode == WORKLOAD_CLOSED) {
        int users = static_cast<int>(load);
        res.concurrency = users;
        s.user_seq.assign(static_cast<size_t>(users), 0);
        for (int u = 0; u < users; u++) s.schedule(0, 1, EV_ARRIVAL, u);
    } else {
        s.rate = load;
        res.rate = load;
        s.queue_cap = sim_queue_cap(sc.engine);
        s.schedule(0, 1, EV_ARRIVAL, -1);
    }

    while (!s.window.closed() && !s.overflow && !s.events.empty()) {
        Event ev = s.events.top();
        s.events.pop();
        assert(ev.time >= s.now && "time ran backwards");
        s.now = ev.time;
        if (ev.kind == EV_STEP_END) end_step(s);
        else if (ev.kind == EV_ARRIVAL) arrive(s, ev.arg);
        else prefill_done(s, ev.arg);
        // Handle every event of this instant before deciding the next step.
        if (!s.events.empty() && s.events.top().time == s.now) continue;
        if (!s.busy && !s.window.closed()) start_step(s);
        if (s.obs) {
            SimState st{s.now, s.arrived, s.done, s.waiting_count(), static_cast<int>(s.prefilling.size()),
                        static_cast<int>(s.running.size()), s.remote_prefill, s.kv_used,
                        sc.engine.kv_capacity_tokens, s.busy};
            s.obs->on_state(st);
        }
    }

    if (s.overflow) window_stop(s.window, s.now);
    window_result(s.window, sc.engine.tp, &res);
    res.short_window = s.short_window;
    const double n = static_cast<double>(res.n_requests);
    const double growth = static_cast<double>(s.in_system_close - s.in_system_open);
    res.unstable = s.overflow || (w.mode == WORKLOAD_OPEN && growth > std::max(0.1 * n, 3 * std::sqrt(n)));
    return res;
}

}  // namespace sp
