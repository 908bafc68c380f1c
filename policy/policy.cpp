// policy.cpp: the verification policies of policy.h.
//
// dspark, dspark-async, goodput and draft-prob share one ranking of the draft
// slots (r, j): gain a(r, j) descending, then j ascending, then r ascending,
// built as a sorted array of packed keys (Ranking below) and walked in order.
// fixed, threshold, mtp1 and batch-table pick l_r per request and then share
// trim_to_budget. Scratch buffers are thread_local and only grow, so a call
// allocates nothing once warm.
#include "policy/policy.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <vector>

#include "policy/draft_prob.h"

namespace sp {

// ---- parsing

static const char* const POLICY_NAMES[] = {"ar",           "mtp1",    "fixed",       "threshold", "dspark",
                                           "dspark-async", "goodput", "batch-table", "draft-prob"};
static_assert(sizeof(POLICY_NAMES) / sizeof(POLICY_NAMES[0]) == POLICY_COUNT, "one name per PolicyKind");

bool policy_parse(const std::string& text, Policy* out, std::string* err) {
    auto fail = [&](const std::string& expected) {
        if (err) *err = expected + ", got '" + text + "'";
        return false;
    };
    Policy p;
    for (int k = 0; k < POLICY_COUNT; k++) {
        if (k == POLICY_FIXED || k == POLICY_THRESHOLD || text != POLICY_NAMES[k]) continue;
        p.kind = static_cast<PolicyKind>(k);
        p.name = text;
        *out = p;
        return true;
    }
    const char* end = text.data() + text.size();
    if (text.starts_with("fixed:")) {
        const char* s = text.data() + 6;
        auto [ptr, ec] = std::from_chars(s, end, p.k);
        if (s == end || ec != std::errc() || ptr != end || p.k < 0)
            return fail("fixed:K with K a whole number >= 0");
        p.kind = POLICY_FIXED;
        p.name = "fixed:" + std::to_string(p.k);
        *out = p;
        return true;
    }
    if (text.starts_with("threshold:")) {
        const char* s = text.data() + 10;
        auto [ptr, ec] = std::from_chars(s, end, p.threshold);
        if (s == end || ec != std::errc() || ptr != end || !(p.threshold >= 0 && p.threshold <= 1))
            return fail("threshold:T with T a number in [0, 1]");
        // Canonical text is the shortest form that reads back as the same
        // double: "threshold:0.60" and "threshold:6e-1" both become "threshold:0.6".
        char buf[32];
        auto [tend, tec] = std::to_chars(buf, buf + sizeof buf, p.threshold);
        assert(tec == std::errc() && "a double always fits 32 chars");
        p.kind = POLICY_THRESHOLD;
        p.name = "threshold:" + std::string(buf, tend);
        *out = p;
        return true;
    }
    return fail("a policy: ar, mtp1, fixed:K, threshold:T, dspark, dspark-async, goodput, batch-table or draft-prob");
}

// k for R running requests: the entry with the largest min <= R (the later
// one among equal mins), 0 when every min exceeds R. Order-independent, so an
// unsorted table cannot silently pick the wrong row.
static int batch_table_k(const Policy& p, int n_running) {
    int best_min = -1, k = 0;
    for (const auto& [min_running, entry_k] : p.batch_table)
        if (min_running <= n_running && min_running >= best_min) {
            best_min = min_running;
            k = entry_k;
        }
    return k;
}

int policy_draft_len(const Policy& p, int gamma) {
    switch (p.kind) {
    case POLICY_AR: return 0;
    case POLICY_MTP1: return std::min(1, gamma);
    case POLICY_FIXED: return std::min(p.k, gamma);
    case POLICY_BATCH_TABLE: {
        // The most the table can ever verify: drafting more is waste. Exact
        // for a flat table, an upper bound otherwise (this interface has no R).
        int k = 0;
        for (const auto& e : p.batch_table) k = std::max(k, e.second);
        return std::min(k, gamma);
    }
    default: return gamma;
    }
}

int policy_draft_len_at(const Policy& p, int gamma, int n_running, int draft_max_running) {
    if (draft_max_running > 0 && n_running > draft_max_running) return 0;
    if (p.kind == POLICY_BATCH_TABLE) return std::clamp(batch_table_k(p, n_running), 0, std::max(gamma, 0));
    return policy_draft_len(p, gamma);
}

bool policy_needs_step_time(const Policy& p) {
    return p.kind == POLICY_DSPARK || p.kind == POLICY_DSPARK_ASYNC || p.kind == POLICY_GOODPUT ||
           p.kind == POLICY_DRAFT_PROB;
}

// ---- the ranking

// Cap on l_r: max_len[r] clamped into [0, gamma]; no max_len means gamma.
static int slot_cap(const PolicyInput& in, int r) {
    return in.max_len ? std::clamp(in.max_len[r], 0, in.gamma) : in.gamma;
}

// The slot ranking of one (n, gamma) factor matrix: the gain of (r, j) is
// a(r, j) = prod_{i<=j} factor(r, i), factor(r, i) = f[r * row + (i - 1) * col]
// clamped to at most 1, for j up to the request's cap and while a > 0.
// dspark passes its confidences (row gamma, col 1), goodput one alpha per
// request (row 1, col 0), so a = alpha^j. Gains are float products, so the
// number ranked is exactly the number added to tau.
//
// Each slot is one word, a key whose integer order is the ranking: bits
// 63..32 the gain's float bits (positive IEEE floats order like their bit
// patterns), bits 31..24 255 - j, bits 23..0 2^24 - 1 - r. Keys are unique.
//
// The sort (ranking_init): an LSD radix sort on the gain's top bits, then
// std::sort on each run of keys those bits do not separate (rare, short runs
// unless many gains are equal; O(N log N) at worst); up to RANK_SMALL slots,
// std::sort alone. Measured per dspark_schedule call at R = 256, gamma = 7,
// every slot admitted (thread CPU time, 2.6 GHz Xeon VM): k-way merge with a
// binary heap over the R requests, O(R + K log R) for K slots drawn, 41 us;
// with a loser tree 40 us (both wait on a chain of dependent compares per
// slot); one counting pass into 128 buckets per octave plus insertion sort
// 13 us, but slower on gains crowded into one octave, as the bundled trace's
// are (insertion sort was half its time in bench_sim); this 13 us, of which
// the walk with its step_time calls is 4 us.
constexpr int RANK_MAX_GAMMA = 255;
constexpr int RANK_MAX_N = 1 << 24;
constexpr int RANK_RADIX = 1024;  // buckets per radix digit
constexpr size_t RANK_SMALL = 80;  // slots up to which std::sort beats the radix sort (measured crossover)

static uint64_t rank_key(float a, int j, int r) {
    return static_cast<uint64_t>(std::bit_cast<uint32_t>(a)) << 32 | static_cast<uint64_t>(RANK_MAX_GAMMA - j) << 24 |
           static_cast<uint64_t>(RANK_MAX_N - 1 - r);
}

struct Ranking {
    const uint64_t* keys = nullptr;  // (size) best first
    int size = 0, pos = 0;
};

static void ranking_init(Ranking& k, const PolicyInput& in, const float* f, int row, int col) {
    assert(in.n >= 0 && in.n < RANK_MAX_N && in.gamma >= 0 && in.gamma <= RANK_MAX_GAMMA &&
           "ranking: n or gamma out of range");
    thread_local std::vector<uint64_t> buf;  // (2 n gamma) keys as produced, then sorted
    const size_t cells = static_cast<size_t>(in.n) * in.gamma;
    if (buf.size() < 2 * cells) buf.resize(2 * cells);
    uint64_t *raw = buf.data(), *out = buf.data() + cells;
    size_t size = 0;
    for (int r = 0; r < in.n; r++) {
        const float* fr = f + static_cast<size_t>(r) * row;
        float a = 1;
        for (int j = 1, cap = slot_cap(in, r); j <= cap; j++) {
            float c = fr[static_cast<size_t>(j - 1) * col];
            a *= c > 1 ? 1.0f : c;
            if (!(a > 0)) break;  // also NaN: no slot from here on
            raw[size++] = rank_key(a, j, r);
        }
    }
    auto later = [](uint64_t x, uint64_t y) { return x > y; };
    if (size <= RANK_SMALL) {  // the radix passes' fixed cost (2 x 1024 counters) would dominate
        std::sort(raw, raw + size, later);
        k = Ranking{raw, static_cast<int>(size), 0};
        return;
    }
    // LSD radix sort, descending, on the top 20 of the gain's 30 significant
    // float bits (a <= 1, so bits 31 and 30 are 0): two digits of 10 bits, a
    // digit equal in every key skipped. Keys that agree on those 20 bits
    // (gains within 2^-13 of each other, equal gains among them) are left
    // adjacent and get their final order from std::sort on the whole key.
    uint32_t count[2][RANK_RADIX];
    std::fill(&count[0][0], &count[0][0] + 2 * RANK_RADIX, 0u);
    for (size_t i = 0; i < size; i++) {
        count[0][raw[i] >> 42 & (RANK_RADIX - 1)]++;
        count[1][raw[i] >> 52 & (RANK_RADIX - 1)]++;
    }
    for (int d = 0; d < 2; d++) {
        const int shift = 42 + 10 * d;
        if (count[d][raw[0] >> shift & (RANK_RADIX - 1)] == size) continue;
        uint32_t at = 0;
        for (int b = RANK_RADIX - 1; b >= 0; b--) {
            uint32_t c = count[d][b];
            count[d][b] = at;
            at += c;
        }
        for (size_t i = 0; i < size; i++) out[count[d][raw[i] >> shift & (RANK_RADIX - 1)]++] = raw[i];
        std::swap(raw, out);
    }
    for (size_t i = 0, e; i < size; i = e) {
        for (e = i + 1; e < size && raw[e] >> 42 == raw[i] >> 42;) e++;
        if (e - i > 1) std::sort(raw + i, raw + e, later);
    }
    out = raw;
    k = Ranking{out, static_cast<int>(size), 0};
}

// The next slot in ranking order; false when none with a > 0 is left.
static bool ranking_next(Ranking& k, int* r, int* j, float* a) {
    if (k.pos == k.size) return false;
    uint64_t key = k.keys[k.pos++];
    *a = std::bit_cast<float>(static_cast<uint32_t>(key >> 32));
    *j = RANK_MAX_GAMMA - static_cast<int>(key >> 24 & 0xFF);
    *r = RANK_MAX_N - 1 - static_cast<int>(key & 0xFFFFFF);
    return true;
}

// Walks the ranking from l = 0, adding one slot at a time while B stays within
// the token budget, with Theta = tau / step_time(B). early_stop: admit while
// Theta strictly rises and stop at the first slot that does not raise it
// (Algorithm 1). Otherwise: walk every slot and keep the prefix of largest
// Theta, the shortest among equals. Writes ell (zeroed first) when not null,
// sets *k_out to the number of slots kept and returns their Theta.
static double theta_search(const PolicyInput& in, Ranking& rank, bool early_stop, int* ell, int* k_out) {
    thread_local std::vector<int> order;  // request of each slot walked (argmax mode)
    order.clear();
    if (ell) std::fill(ell, ell + in.n, 0);
    int n_tokens = in.n, k = 0, k_best = 0;
    double tau = in.n;
    double best = in.n > 0 ? tau / in.step_time(in.n, n_tokens) : 0;
    int r, j;
    float a;
    while (n_tokens < in.token_budget && ranking_next(rank, &r, &j, &a)) {
        n_tokens++;
        tau += a;
        k++;
        double theta = tau / in.step_time(in.n, n_tokens);
        if (early_stop) {
            if (!(theta > best)) break;
            if (ell) ell[r] = j;
        } else if (ell) {
            order.push_back(r);
        }
        if (theta > best) {
            best = theta;
            k_best = k;
        }
    }
    // A request's slots arrive in j order, so its l is its count in the prefix.
    if (!early_stop && ell)
        for (int i = 0; i < k_best; i++) ell[order[static_cast<size_t>(i)]]++;
    if (k_out) *k_out = k_best;
    return best;
}

double dspark_schedule(const PolicyInput& in, bool early_stop, int* ell) {
    assert(in.token_budget >= in.n && "dspark: token budget below one token per request");
    Ranking rank;
    ranking_init(rank, in, in.conf, in.gamma, 1);
    return theta_search(in, rank, early_stop, ell, nullptr);
}

// The production variant: the budget K comes from stale confidences through
// the global argmax (no early stop, so it can jump past step-time cliffs); the
// K slots verified are the top K of the current ranking. Causal because K
// does not depend on this step's drafts and (r, j + 1) ranks after (r, j).
static void dspark_async(const PolicyInput& in, int* ell) {
    assert(in.token_budget >= in.n && "dspark-async: token budget below one token per request");
    Ranking rank;
    int budget = 0;
    ranking_init(rank, in, in.conf_stale ? in.conf_stale : in.conf, in.gamma, 1);
    theta_search(in, rank, false, nullptr, &budget);
    std::fill(ell, ell + in.n, 0);
    ranking_init(rank, in, in.conf, in.gamma, 1);
    int r, j;
    float a;
    for (int i = 0; i < budget && ranking_next(rank, &r, &j, &a); i++) ell[r] = j;
}

// Largest acceptance goodput believes in. alpha_hat = 1 (a short history of
// full accepts) would make every slot worth a full token; capping just below
// 1 keeps alpha^j strictly falling in j, so deeper slots rank after shallower
// ones of every request with the same history.
constexpr double GOODPUT_MAX_ALPHA = 0.999;

// SmartSpec goodput with per-request i.i.d. acceptance: slot j of request r
// gains alpha_r^j expected tokens, so l drafts give (1 - alpha^(l+1)) / (1 -
// alpha) in all. Global argmax of (n + sum of gains) / step_time(B) over the
// gain ranking: alpha_hat comes from past steps, so no selection bias.
static void goodput(const PolicyInput& in, int* ell) {
    assert((in.alpha_hat || in.n == 0) && "goodput needs alpha_hat");
    assert(in.token_budget >= in.n && "goodput: token budget below one token per request");
    thread_local std::vector<float> alpha;
    alpha.resize(static_cast<size_t>(in.n));
    for (int r = 0; r < in.n; r++) {
        double x = in.alpha_hat[r];
        alpha[static_cast<size_t>(r)] = x > 0 ? static_cast<float>(std::min(x, GOODPUT_MAX_ALPHA)) : 0.0f;  // NaN -> 0
    }
    Ranking rank;
    ranking_init(rank, in, alpha.data(), 1, 0);
    theta_search(in, rank, false, ell, nullptr);
}

// The estimator's c(r, j) for every slot a request may verify (the rest are
// never read), then Algorithm 1 over them as over a head's confidences.
static void draft_prob(const PolicyInput& in, int* ell) {
    assert((in.n == 0 || (in.draft_prob && in.estimator)) && "draft-prob needs draft_prob and estimator");
    thread_local std::vector<float> c;  // (n, gamma) estimated conditional acceptance
    c.assign(static_cast<size_t>(in.n) * in.gamma, 0.0f);
    for (int r = 0; r < in.n; r++)
        for (int j = 0, cap = slot_cap(in, r); j < cap; j++) {
            const size_t at = static_cast<size_t>(r) * in.gamma + j;
            c[at] = static_cast<float>(draft_prob_estimate(*in.estimator, in.draft_prob[at]));
        }
    PolicyInput est = in;
    est.conf = c.data();
    dspark_schedule(est, true, ell);
}

// ---- the static policies

// Lowers l_r until sum (1 + l_r) <= token_budget, taking the deepest slot
// first (largest j; among equal depth the highest r), so each request keeps
// its shallow drafts, the likeliest to be accepted. O(gamma * n) when binding.
static void trim_to_budget(const PolicyInput& in, int* ell) {
    int64_t excess = -static_cast<int64_t>(in.token_budget);
    for (int r = 0; r < in.n; r++) excess += 1 + ell[r];
    for (int d = in.gamma; d >= 1 && excess > 0; d--)
        for (int r = in.n - 1; r >= 0 && excess > 0; r--)
            if (ell[r] == d) {
                ell[r]--;
                excess--;
            }
}

void policy_choose(const Policy& p, const PolicyInput& in, int* ell) {
    assert(in.n >= 0 && in.gamma >= 0 && in.token_budget >= in.n && "policy_choose: bad input");
    int k_all = 0;
    switch (p.kind) {
    case POLICY_DSPARK: dspark_schedule(in, true, ell); return;
    case POLICY_DSPARK_ASYNC: dspark_async(in, ell); return;
    case POLICY_GOODPUT: goodput(in, ell); return;
    case POLICY_DRAFT_PROB: draft_prob(in, ell); return;
    case POLICY_AR: std::fill(ell, ell + in.n, 0); return;
    case POLICY_MTP1: k_all = 1; break;
    case POLICY_FIXED: k_all = p.k; break;
    case POLICY_BATCH_TABLE: k_all = batch_table_k(p, in.n); break;
    case POLICY_THRESHOLD: {
        // Compared in float, the confidences' own precision: a confidence
        // stored as 0.6 meets threshold:0.6.
        const float t = static_cast<float>(p.threshold);
        for (int r = 0; r < in.n; r++) {
            const float* c = in.conf + static_cast<size_t>(r) * in.gamma;
            int cap = slot_cap(in, r), l = 0;
            while (l < cap && c[l] >= t) l++;
            ell[r] = l;
        }
        trim_to_budget(in, ell);
        return;
    }
    default: assert(false && "policy_choose: unknown policy kind"); return;
    }
    for (int r = 0; r < in.n; r++) ell[r] = std::clamp(k_all, 0, slot_cap(in, r));
    trim_to_budget(in, ell);
}

}  // namespace sp
