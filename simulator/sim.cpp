// sim.cpp: the event loop and the engine model of sim.h.
//
// [SECTION] state    requests, replicas (each with its queue and the step it runs), the event queue
// [SECTION] workload arrivals, the router, completions
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
    int rep;          // EV_STEP_END, EV_PREFILL_DONE: the replica
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

struct Sim;

// One replica: its requests, its queue, its KV cache and the step it runs.
struct Replica {
    int index = 0;
    std::vector<SimRequest> pool;     // request slots, reused: memory stays flat
    std::vector<int> free_slots;
    std::vector<int> waiting_fifo;    // pool indices, FCFS; head at waiting_head
    size_t waiting_head = 0;
    std::vector<int> prefilling;      // pool indices, admission order
    std::vector<int> running;         // pool indices, admission order
    int64_t kv_used = 0;
    DraftProbEstimator draft_est;     // draft-prob's, over every step of this point, as the engine's Speculator
    int64_t arrived = 0, done = 0;    // routed here; completed here
    int remote_prefill = 0;           // disaggregated: prompts being prefilled elsewhere

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
    int step_draft_len = 0;           // drafts per decoding request this iteration (policy_draft_len_at)
    double step_draft_s = 0, step_forward_s = 0;
    // what the policy's StepTime needs
    double decode_context = 0;
    int policy_prefill = 0;           // prefill tokens the step carries with l = 0 for everyone
    int64_t pending_prefill = 0;      // prompt tokens not yet prefilled among prefilling requests
    const Sim* sim = nullptr;         // for step_seconds

    int waiting_count() const { return static_cast<int>(waiting_fifo.size() - waiting_head); }
    int64_t outstanding() const { return arrived - done; }  // routed here, not completed
};

struct Sim {
    const Scenario& sc;
    const AcceptanceData& acc;
    const Policy& policy;
    SimObserver* obs;
    int gamma;
    bool reads_conf;                  // the policy ranks drafts by confidence: draw every slot up front
    bool reads_q;                     // draft-prob: the recorded draft probabilities and the estimator

    int64_t now = 0;
    uint64_t seq = 0;
    std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;

    std::vector<Replica> reps;        // the fleet: sc.fleet.replicas
    uint64_t routed = 0;              // requests routed so far (round-robin's turn)
    int last_pick = -1;               // least-loaded: the replica chosen last (ties go to the next after it)
    std::vector<uint32_t> user_seq;   // closed loop: requests sent per user
    Rng arrivals;
    int64_t arrival_index = 0;
    double rate = 0;

    // counters
    int64_t arrived = 0, done = 0;
    Window window;                    // the measurement (metrics.h), over the whole fleet; sized by sim_run_point
    // overload (sim.h), open loop
    int queue_cap = 0;                // 0: closed loop, no cap; per replica
    bool overflow = false;            // the cap was passed: the point stops
    int64_t in_system_open = 0, in_system_close = 0;  // arrived - done as the window opened, closed
    bool window_sized = false;        // workload_window sized it: an open loop's grows as it opens
    bool short_window = false;        // the window is shorter than the load needs (workload_window)

    Sim(const Scenario& s, const AcceptanceData& a, const Policy& p, SimObserver* o)
        : sc(s), acc(a), policy(p), obs(o), gamma(s.engine.gamma),
          reads_conf(p.kind == POLICY_THRESHOLD || p.kind == POLICY_DSPARK || p.kind == POLICY_DSPARK_ASYNC),
          reads_q(p.kind == POLICY_DRAFT_PROB),
          reps(static_cast<size_t>(s.fleet.replicas)),
          arrivals(rng_seed(s.seed, WORKLOAD_STREAM_ARRIVALS)) {
        for (size_t i = 0; i < reps.size(); i++) {
            reps[i].index = static_cast<int>(i);
            reps[i].sim = this;
        }
    }

    void schedule(int64_t time, int cls, int kind, int arg, int rep = 0) {
        assert(time >= now && "an event may not be scheduled in the past");
        events.push({time, cls, seq++, kind, arg, rep});
    }
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
        t += cost_forward_run_s(s.sc.cost, b);
        done += chunk;
    }
    return t;
}

static void complete(Sim& s, Replica& rp, int slot);

// The prompt is in a KV cache elsewhere and the first token is out; the
// request now waits for a place in the decode batch.
static void prefill_done(Sim& s, Replica& rp, int slot) {
    SimRequest& r = rp.pool[static_cast<size_t>(slot)];
    rp.remote_prefill--;
    r.prefilled = r.prompt_len;
    r.generated = 1;
    r.first_token_ns = r.last_emit_ns = s.now;
    if (r.output_len == 1) complete(s, rp, slot);
    else rp.waiting_fifo.push_back(slot);
}

// The router (sim.h): which replica a request arriving now goes to.
static Replica& route(Sim& s, int user) {
    const int n = static_cast<int>(s.reps.size());
    const uint64_t turn = s.routed++;
    if (n == 1) return s.reps[0];
    switch (s.sc.fleet.router) {
        case ROUTER_ROUND_ROBIN: return s.reps[static_cast<size_t>(turn % static_cast<uint64_t>(n))];
        case ROUTER_LEAST_LOADED: {
            int best = -1;
            for (int j = 1; j <= n; j++) {  // from the one after the last chosen, so ties take turns
                const int i = (s.last_pick + j) % n;
                if (best < 0 || s.reps[static_cast<size_t>(i)].outstanding() < s.reps[static_cast<size_t>(best)].outstanding())
                    best = i;
            }
            s.last_pick = best;
            return s.reps[static_cast<size_t>(best)];
        }
        case ROUTER_AFFINITY:
            assert(user >= 0 && "affinity routes users of a closed loop");
            return s.reps[static_cast<size_t>(fleet_affinity_replica(s.sc, user))];
    }
    return s.reps[0];
}

static void arrive(Sim& s, int user) {
    uint64_t key = user >= 0 ? (static_cast<uint64_t>(user) << 32 | s.user_seq[static_cast<size_t>(user)]++)
                             : static_cast<uint64_t>(s.arrival_index++);
    RequestSpec spec = workload_request(s.sc, s.acc, key);
    Replica& rp = route(s, user);
    int slot;
    if (!rp.free_slots.empty()) {
        slot = rp.free_slots.back();
        rp.free_slots.pop_back();
    } else {
        slot = static_cast<int>(rp.pool.size());
        rp.pool.emplace_back();
        rp.pool.back().conf_hist.assign(static_cast<size_t>(3 * s.gamma), 0.0f);
    }
    SimRequest& r = rp.pool[static_cast<size_t>(slot)];
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
    rp.arrived++;
    window_arrive(s.window, s.now);
    if (s.queue_cap > 0 && rp.waiting_count() + rp.remote_prefill >= s.queue_cap) s.overflow = true;
    if (s.sc.engine.disaggregated_prefill) {
        rp.remote_prefill++;
        s.schedule(at(s, to_ns(s, remote_prefill_s(s, r.prompt_len), "cost", "a prefill time"), "cost"), 1,
                   EV_PREFILL_DONE, slot, rp.index);
    } else {
        rp.waiting_fifo.push_back(slot);
    }
    if (user < 0 && workload_log_arrivals(s.sc.workload)) {
        // The log's next time; arrivals of one instant stay at one instant.
        const int64_t t = span_ns(s, workload_log_arrival_s(s.sc.workload, s.rate, uint64_t(s.arrival_index)),
                                  "workload.log", "an arrival time");
        s.schedule(std::max(t, s.now), 1, EV_ARRIVAL, -1);
    } else if (user < 0) {
        int64_t gap = to_ns(s, workload_gap_s(s.sc.workload, s.rate, s.arrivals), "workload.rate", "an arrival gap");
        s.schedule(at(s, gap, "workload.rate"), 1, EV_ARRIVAL, -1);
    }
}

static void complete(Sim& s, Replica& rp, int slot) {
    SimRequest& r = rp.pool[static_cast<size_t>(slot)];
    s.done++;
    rp.done++;
    if (r.admitted) rp.kv_used -= r.kv_reserved;
    if (s.obs)
        s.obs->on_complete(
            {r.key, r.domain, r.prompt_len, r.output_len, r.arrival_ns, r.first_token_ns, s.now, rp.index,
             r.admitted ? r.admitted_ns : s.now});  // disaggregated, one token: done without a decode slot
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
    rp.free_slots.push_back(slot);
}

// [SECTION] engine ----------------------------------------------------------------

static BatchShape batch_shape(const Replica& rp, int decode_tokens, int prefill_tokens, int prefill_seqs,
                              double prefill_context) {
    BatchShape b;
    b.n_decode_seqs = static_cast<int>(rp.step_decode.size());
    b.n_decode_tokens = decode_tokens;
    b.decode_context = rp.decode_context;
    b.n_prefill_seqs = prefill_seqs;
    b.n_prefill_tokens = prefill_tokens;
    b.prefill_context = prefill_context;
    return b;
}

// Prefill tokens a forward of B decode tokens leaves room for.
static int prefill_room(const Sim& s, const Replica& rp, int decode_tokens) {
    int64_t room = std::min<int64_t>(s.sc.engine.prefill_chunk_tokens, s.sc.engine.max_batch_tokens - decode_tokens);
    return static_cast<int>(std::max<int64_t>(0, std::min(room, rp.pending_prefill)));
}

// The policies' StepTime: the draft phase plus a forward of B decode tokens
// on top of the prefill this step would carry without drafts. Pricing
// against a fixed prefill matters: if drafts could push prefill out of the
// batch, extra verify tokens would look free exactly when the GPU is
// compute-bound, and no policy would ever cut verification under load.
static double step_seconds(const void* ctx, int /*n_seqs: the state's running set*/, int decode_tokens) {
    const Replica& rp = *static_cast<const Replica*>(ctx);
    int p = rp.policy_prefill;
    return rp.step_draft_s + cost_forward_s(rp.sim->sc.cost, batch_shape(rp, decode_tokens, p, p > 0 ? 1 : 0, 0));
}

static void admit(Sim& s, Replica& rp) {
    while (rp.waiting_count() > 0 &&
           static_cast<int>(rp.running.size() + rp.prefilling.size()) < s.sc.engine.max_seqs) {
        int slot = rp.waiting_fifo[rp.waiting_head];
        SimRequest& r = rp.pool[static_cast<size_t>(slot)];
        if (rp.kv_used + r.kv_reserved > s.sc.engine.kv_capacity_tokens) break;  // FCFS: the head waits
        rp.kv_used += r.kv_reserved;
        r.admitted = true;
        r.admitted_ns = s.now;
        rp.waiting_head++;
        if (r.prefilled == r.prompt_len && r.generated > 0) {  // prefilled elsewhere
            rp.running.push_back(slot);
        } else {
            rp.prefilling.push_back(slot);
            rp.pending_prefill += r.prompt_len;
        }
    }
    if (rp.waiting_head > 4096 && rp.waiting_head * 2 > rp.waiting_fifo.size()) {  // compact the FIFO
        rp.waiting_fifo.erase(rp.waiting_fifo.begin(), rp.waiting_fifo.begin() + static_cast<long>(rp.waiting_head));
        rp.waiting_head = 0;
    }
}

static void start_step(Sim& s, Replica& rp) {
    admit(s, rp);
    const int G = s.gamma;
    const size_t R = rp.running.size();
    if (R == 0 && rp.prefilling.empty()) return;

    // 1. the decoding requests' drafts and the policy's choice
    rp.step_decode = rp.running;
    rp.ell.assign(R, 0);
    rp.max_len.resize(R);
    rp.draws.resize(R);
    rp.conf.resize(R * static_cast<size_t>(G));
    rp.conf_stale.resize(R * static_cast<size_t>(G));
    rp.alpha_hat.resize(R);
    if (s.reads_q) rp.draft_q.resize(R * static_cast<size_t>(G));
    rp.keys.resize(R);
    rp.step_draft_len = policy_draft_len_at(s.policy, G, static_cast<int>(R), s.sc.engine.draft_max_running);
    double context = 0;
    for (size_t i = 0; i < R; i++) {
        const SimRequest& r = rp.pool[static_cast<size_t>(rp.step_decode[i])];
        int t = r.generated - 1;
        if (s.reads_conf) acceptance_draw(s.acc, r.key, r.domain, r.trace_idx, t, r.n_steps, 0, G, &rp.draws[i]);
        else std::fill_n(rp.draws[i].conf, G, 0.0f);
        std::copy_n(rp.draws[i].conf, G, &rp.conf[i * static_cast<size_t>(G)]);
        // two steps old: the ring row of step n_steps - 2, or this step's for a young request
        const float* stale = r.n_steps >= 2 ? &r.conf_hist[static_cast<size_t>(((r.n_steps - 2) % 3) * G)]
                                            : rp.draws[i].conf;
        std::copy_n(stale, G, &rp.conf_stale[i * static_cast<size_t>(G)]);
        rp.max_len[i] = std::min(rp.step_draft_len, r.output_len - r.generated - 1);  // no more than was drafted
        // Laplace estimate of the request's acceptance from what it has verified so far
        rp.alpha_hat[i] = alpha_estimate(r.accepted, r.verified);
        if (s.reads_q) acceptance_draft_prob(s.acc, r.trace_idx, t, &rp.draft_q[i * static_cast<size_t>(G)]);
        rp.keys[i] = r.key;
        context += r.prompt_len + r.generated;
    }
    rp.decode_context = R ? context / static_cast<double>(R) : 0;
    rp.step_draft_s = R && rp.step_draft_len > 0
                          ? cost_draft_s(s.sc.cost, static_cast<int>(R), rp.step_draft_len, rp.decode_context)
                          : 0;
    rp.policy_prefill = prefill_room(s, rp, static_cast<int>(R));
    if (R > 0) {
        PolicyInput in;
        in.n = static_cast<int>(R);
        in.gamma = G;
        in.conf = rp.conf.data();
        in.conf_stale = rp.conf_stale.data();
        in.max_len = rp.max_len.data();
        in.alpha_hat = rp.alpha_hat.data();
        in.draft_prob = s.reads_q ? rp.draft_q.data() : nullptr;
        in.estimator = &rp.draft_est;
        in.token_budget = s.sc.engine.max_batch_tokens;
        in.step_time = StepTime{step_seconds, &rp};
        policy_choose(s.policy, in, rp.ell.data());
    }
    int decode_tokens = 0;
    for (size_t i = 0; i < R; i++) {
        assert(rp.ell[i] >= 0 && rp.ell[i] <= rp.max_len[i] && "policy exceeded a request's cap");
        decode_tokens += 1 + rp.ell[i];
        if (!s.reads_conf && rp.ell[i] > 0) {  // only the verified slots' outcomes are needed
            const SimRequest& r = rp.pool[static_cast<size_t>(rp.step_decode[i])];
            acceptance_draw(s.acc, r.key, r.domain, r.trace_idx, r.generated - 1, r.n_steps, 0, rp.ell[i], &rp.draws[i]);
        }
    }
    assert(decode_tokens <= s.sc.engine.max_batch_tokens && "policy exceeded the token budget");

    // 2. prefill chunks in the room B leaves, FCFS
    rp.step_prefill.clear();
    int room = prefill_room(s, rp, decode_tokens);
    double prefill_context = 0;
    for (int slot : rp.prefilling) {
        if (room == 0) break;
        const SimRequest& r = rp.pool[static_cast<size_t>(slot)];
        int chunk = std::min(room, r.prompt_len - r.prefilled);
        if (chunk <= 0) continue;
        rp.step_prefill.push_back({slot, chunk});
        prefill_context += r.prefilled;
        room -= chunk;
    }
    int prefill_tokens = 0;
    for (auto [slot, chunk] : rp.step_prefill) prefill_tokens += chunk;
    int prefill_seqs = static_cast<int>(rp.step_prefill.size());
    if (prefill_seqs) prefill_context /= prefill_seqs;

    rp.step_forward_s =
        cost_forward_run_s(s.sc.cost, batch_shape(rp, decode_tokens, prefill_tokens, prefill_seqs, prefill_context));
    rp.step_tokens = decode_tokens + prefill_tokens;
    rp.step_prefill_tokens = prefill_tokens;
    rp.step_start = s.now;
    rp.busy = true;
    const double host_s = cost_host_s(s.sc.cost, static_cast<int>(R + rp.step_prefill.size()));
    s.schedule(at(s, to_ns(s, rp.step_draft_s + rp.step_forward_s + host_s, "cost", "an iteration time"), "cost"),
               0,
               EV_STEP_END, 0, rp.index);
}

static void end_step(Sim& s, Replica& rp) {
    const int G = s.gamma;
    const size_t R = rp.step_decode.size();
    rp.busy = false;
    const bool counted = window_step(s.window, rp.step_start, s.now, static_cast<int>(R), rp.step_tokens, rp.kv_used);
    rp.n_acc.assign(R, 0);
    int64_t emitted = 0;
    std::vector<int> finished;
    for (size_t i = 0; i < R; i++) {
        SimRequest& r = rp.pool[static_cast<size_t>(rp.step_decode[i])];
        int n = acceptance_count(s.acc, r.key, r.generated - 1, rp.ell[i], rp.draws[i]);
        rp.n_acc[i] = n;
        r.generated += n + 1;
        r.verified += rp.ell[i];
        r.accepted += n;
        if (s.reads_q) draft_prob_observe(rp.draft_est, &rp.draft_q[i * static_cast<size_t>(G)], rp.ell[i], n);
        std::copy_n(rp.draws[i].conf, G, &r.conf_hist[static_cast<size_t>((r.n_steps % 3) * G)]);
        r.n_steps++;
        emitted += n + 1;
        if (counted) window_request_step(s.window, rp.ell[i], n, s.now - r.last_emit_ns);
        r.last_emit_ns = s.now;
        if (r.generated >= r.output_len) finished.push_back(rp.step_decode[i]);
    }
    for (auto [slot, chunk] : rp.step_prefill) {
        SimRequest& r = rp.pool[static_cast<size_t>(slot)];
        r.prefilled += chunk;
        rp.pending_prefill -= chunk;
        if (r.prefilled < r.prompt_len) continue;
        r.first_token_ns = r.last_emit_ns = s.now;  // the forward that completes the prompt yields the first token
        r.generated = 1;
        emitted += 1;
        rp.prefilling.erase(std::find(rp.prefilling.begin(), rp.prefilling.end(), slot));
        if (r.output_len == 1) finished.push_back(slot);
        else rp.running.push_back(slot);
    }
    if (counted) window_tokens(s.window, emitted);
    if (s.obs) {
        StepView v;
        v.start_ns = rp.step_start;
        v.end_ns = s.now;
        v.gamma = G;
        v.n_decode = static_cast<int>(R);
        v.keys = rp.keys.data();
        v.ell = rp.ell.data();
        v.accepted = rp.n_acc.data();
        v.conf = rp.conf.data();
        v.draft_len = rp.step_draft_len;
        v.batch_tokens = rp.step_tokens;
        v.prefill_tokens = rp.step_prefill_tokens;
        v.draft_s = rp.step_draft_s;
        v.forward_s = rp.step_forward_s;
        v.replica = rp.index;
        v.kv_used = rp.kv_used;
        s.obs->on_step(v);
    }
    for (int slot : finished) {
        auto it = std::find(rp.running.begin(), rp.running.end(), slot);
        if (it != rp.running.end()) rp.running.erase(it);
        complete(s, rp, slot);
    }
}

// [SECTION] run -------------------------------------------------------------------

int sim_queue_cap(const EngineConfig& e) {
    return static_cast<int>(std::clamp<int64_t>(16 * static_cast<int64_t>(e.max_seqs), 4096, 262144));
}

int fleet_affinity_replica(const Scenario& sc, int user) {
    const uint64_t n = static_cast<uint64_t>(sc.fleet.replicas);
    return static_cast<int>(rng_hash(sc.seed, FLEET_STREAM_AFFINITY, static_cast<uint64_t>(user)) % n);
}

PointResult sim_run_point(const Scenario& sc, const AcceptanceData& acc, const Policy& policy, double load,
                          SimObserver* observer) {
    acceptance_check_policies(sc, acc, {policy});
    assert(sc.fleet.replicas >= 1 && "a fleet of at least one replica");
    assert((sc.fleet.router != ROUTER_AFFINITY || sc.workload.mode == WORKLOAD_CLOSED) &&
           "affinity routes users of a closed loop (scenario_load refuses it on an open loop)");
    const Workload& w = sc.workload;
    // The window per replica, as for one alone (its share of the users),
    // counted over the fleet: replicas x warmup, then replicas x requests.
    const int64_t n_reps = sc.fleet.replicas;
    const WindowSize ws = workload_window(w, load / static_cast<double>(n_reps));
    if ((int64_t(ws.warmup) + ws.requests) * n_reps > FLEET_MAX_COMPLETIONS)
        throw Error(sc.path + ": workload: expected a window of at most 1e+08 completions (warm-up + measured, x " +
                    std::to_string(n_reps) + " replicas), got " +
                    std::to_string((int64_t(ws.warmup) + ws.requests) * n_reps));
    Sim s(sc, acc, policy, observer);
    s.window = window_init(static_cast<int>(ws.warmup * n_reps), static_cast<int>(ws.requests * n_reps),
                           sc.slo.per_user_tok_s, sc.slo.ttft_s);
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
        if (ev.kind == EV_STEP_END) end_step(s, s.reps[static_cast<size_t>(ev.rep)]);
        else if (ev.kind == EV_ARRIVAL) arrive(s, ev.arg);
        else prefill_done(s, s.reps[static_cast<size_t>(ev.rep)], ev.arg);
        // Handle every event of this instant before deciding the next steps.
        if (!s.events.empty() && s.events.top().time == s.now) continue;
        for (Replica& rp : s.reps) {
            if (!rp.busy && !s.window.closed()) start_step(s, rp);
            if (s.obs) {
                SimState st{s.now, rp.arrived, rp.done, rp.waiting_count(), static_cast<int>(rp.prefilling.size()),
                            static_cast<int>(rp.running.size()), rp.remote_prefill, rp.kv_used,
                            sc.engine.kv_capacity_tokens, rp.busy, rp.index};
                s.obs->on_state(st);
            }
        }
    }

    if (s.overflow) window_stop(s.window, s.now);
    window_result(s.window, sc.engine.tp * sc.fleet.replicas, &res);
    // per replica, as for one (a fleet's window and counts are the fleet's)
    const double reps = static_cast<double>(s.reps.size());
    res.request_rate /= reps;
    res.goodput_rate /= reps;
    res.busy_fraction /= reps;
    res.short_window = s.short_window;
    const double n = static_cast<double>(res.n_requests);
    const double growth = static_cast<double>(s.in_system_close - s.in_system_open);
    res.unstable = s.overflow || (w.mode == WORKLOAD_OPEN && growth > std::max(0.1 * n, 3 * std::sqrt(n)));
    return res;
}

}  // namespace sp
