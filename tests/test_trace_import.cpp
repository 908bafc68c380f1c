// test_trace_import.cpp: the importers of other engines' acceptance data
// (traces/trace_vllm.*, trace_aiperf.*, trace_deepspec.*) and the
// "not verified is not rejected" statistics, against hand-worked values:
// the fixtures in tests/fixtures/import/ were written by hand from the
// formats' documentation (shared/reference/ecosystem.md), and every
// expected number below was worked out by hand from them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "tests/cli_run.h"
#include "tests/scratch.h"
#include "traces/calibrate.h"
#include "traces/trace_aiperf.h"
#include "traces/trace_deepspec.h"
#include "traces/trace_jsonl.h"
#include "traces/trace_stats.h"
#include "traces/trace_vllm.h"

namespace sp {
namespace {

const std::string FIX = std::string(SPECPLAN_SOURCE_DIR) + "/tests/fixtures/import/";

std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

VllmRates prom(const std::string& text, const std::string& model = "") {
    std::istringstream in(text);
    return vllm_prom_read(in, "m.prom", model);
}

std::vector<ImportedRequest> requests(const std::string& text) {
    std::istringstream in(text);
    return vllm_requests_read(in, "r.jsonl", ImportOptions{}, 1 << 20);
}

// (drafted, verified, accepted) of every step, in order.
using Triples = std::vector<std::tuple<int, int, int>>;
Triples triples(const std::vector<ImportedRequest::Triple>& steps) {
    Triples out;
    for (const auto& s : steps) out.emplace_back(s.drafted, s.verified, s.accepted);
    return out;
}

// [SECTION] vLLM Prometheus counters --------------------------------------------------

// ecosystem.md section 4: Qwen3-8B + DSpark, unconditional .94 .87 .81 .74
// .69 .63 .59, AL 6.30. Conditional alpha_k = s_k / s_(k-1), by hand:
// .94, .87/.94 = .92553..., .81/.87 = .93103..., .74/.81 = .91358...,
// .69/.74 = .93243..., .63/.69 = .91304..., .59/.63 = .93651...; the
// mean acceptance length is 1 + 527/100 = 6.27 (the table rounds its own
// run's 6.30).
TEST(VllmProm, TheQwen3DSparkRowConvertsToConditionalRates) {
    std::ifstream in(FIX + "vllm_qwen3_8b_dspark.prom", std::ios::binary);
    VllmRates r = vllm_prom_read(in, "fixture");
    EXPECT_EQ(r.model_name, "Qwen/Qwen3-8B");
    EXPECT_EQ(r.drafts, 100.0) << "the two engines' samples are summed";
    EXPECT_EQ(r.per_pos, (std::vector<double>{94, 87, 81, 74, 69, 63, 59}));
    const double want[] = {0.94, 0.925531914893617, 0.931034482758621, 0.913580246913580,
                           0.932432432432432, 0.913043478260870, 0.936507936507937};
    ASSERT_EQ(r.alpha.size(), 7u);
    for (size_t k = 0; k < 7; k++) EXPECT_NEAR(r.alpha[k], want[k], 1e-12) << "slot " << k + 1;
    EXPECT_NEAR(r.mean_acceptance_length, 6.27, 1e-12);
    EXPECT_TRUE(r.notes.empty()) << r.notes.front();
    EXPECT_EQ(alpha_toml_line(r.alpha), "alpha = [0.9400, 0.9255, 0.9310, 0.9136, 0.9324, 0.9130, 0.9365]");
}

TEST(VllmProm, ASlotNoDraftReachedGetsZeroNotADivisionByZero) {
    // s = .5, 0, 0: slot 2 never accepted, slot 3 never reached
    const std::vector<double> a = alpha_from_survival({0.5, 0.0, 0.0});
    EXPECT_EQ(a, (std::vector<double>{0.5, 0.0, 0.0}));
}

// Names without _total, no model_name, a trimmed scrape: k = 12 / 4 = 3,
// positions 0 and 1 only; position 2 = accepted 7 - (4 + 2) = 1.
TEST(VllmProm, OneTrimmedTrailingPositionIsRebuiltFromTheTotal) {
    VllmRates r = prom("vllm:spec_decode_num_drafts 4\n"
                       "vllm:spec_decode_num_draft_tokens 12\n"
                       "vllm:spec_decode_num_accepted_tokens 7\n"
                       "vllm:spec_decode_num_accepted_tokens_per_pos{position=\"0\"} 4\n"
                       "vllm:spec_decode_num_accepted_tokens_per_pos{position=\"1\"} 2 1712345678000\n");
    EXPECT_EQ(r.per_pos, (std::vector<double>{4, 2, 1}));
    EXPECT_EQ(r.alpha, (std::vector<double>{1.0, 0.5, 0.5}));
    ASSERT_EQ(r.notes.size(), 1u);
    EXPECT_NE(r.notes[0].find("position 2 is missing"), std::string::npos) << r.notes[0];
}

TEST(VllmProm, DraftsShorterThanKAreSaidToMixUnverifiedWithRejected) {
    VllmRates r = prom("vllm:spec_decode_num_drafts_total 4\n"
                       "vllm:spec_decode_num_draft_tokens_total 7\n"
                       "vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} 3\n"
                       "vllm:spec_decode_num_accepted_tokens_per_pos_total{position=\"1\"} 1\n");
    EXPECT_EQ(r.alpha, (std::vector<double>{0.75, 1.0 / 3.0}));
    ASSERT_EQ(r.notes.size(), 1u);
    EXPECT_NE(r.notes[0].find("cannot tell their unverified slots from rejected ones"), std::string::npos) << r.notes[0];
}

TEST(VllmProm, BadScrapesAreOneLineErrors) {
    const std::string d = "vllm:spec_decode_num_drafts_total 10\n";
    const std::string p = "vllm:spec_decode_num_accepted_tokens_per_pos_total";
    EXPECT_EQ(error_of([&] { prom(d + p + "{position=\"0\"} 5\n" + p + "{position=\"1\"} 6\n"); }),
              "m.prom:3: vllm:spec_decode_num_accepted_tokens_per_pos{position=\"1\"}: expected at most position 0's "
              "count 5 (a prefix survives no more often than a shorter one), got 6");
    EXPECT_EQ(error_of([&] { prom(d + p + "{position=\"0\"} 11\n"); }),
              "m.prom:2: vllm:spec_decode_num_accepted_tokens_per_pos{position=\"0\"}: expected at most num_drafts 10 "
              "(a prefix survives no more often than a shorter one), got 11");
    EXPECT_EQ(error_of([&] { prom(d + p + "{position=\"0\"} 5\n" + p + "{position=\"2\"} 1\n"); }),
              "m.prom:3: vllm:spec_decode_num_accepted_tokens_per_pos{position=\"2\"}: expected positions from 0 "
              "without gaps (position 1 next), got position 2");
    EXPECT_EQ(error_of([&] { prom("vllm:spec_decode_num_drafts_total{engine=\"0\"} abc\n"); }),
              "m.prom:1: vllm:spec_decode_num_drafts_total: expected a number after the labels, got \"abc\"");
    EXPECT_EQ(error_of([&] { prom(d + d + p + "{position=\"0\"} 5\n"); }),
              "m.prom:2: vllm:spec_decode_num_drafts_total: expected one sample per label set (also given at line 1), "
              "got a second one");
    EXPECT_EQ(error_of([&] { prom(d + p + "{position=\"0\"} -1\n"); }),
              "m.prom:2: vllm:spec_decode_num_accepted_tokens_per_pos_total: expected a finite counter value >= 0, got -1");
    EXPECT_EQ(error_of([&] { prom("vllm:spec_decode_num_drafts_total 0\n" + p + "{position=\"0\"} 0\n"); }),
              "m.prom:1: vllm:spec_decode_num_drafts: expected a count > 0 (no drafts: no rates), got 0");
    EXPECT_EQ(error_of([&] { prom("vllm:num_requests_running 3\n"); }),
              "m.prom: vllm:spec_decode_num_drafts: expected vLLM spec-decode counters (was speculative decoding on?), "
              "got none");
    const std::string two = "vllm:spec_decode_num_drafts_total{model_name=\"a\"} 10\n"
                            "vllm:spec_decode_num_drafts_total{model_name=\"b\"} 10\n" +
                            p + "{model_name=\"a\",position=\"0\"} 5\n" + p + "{model_name=\"b\",position=\"0\"} 2\n";
    EXPECT_EQ(error_of([&] { prom(two); }),
              "m.prom: model_name: expected one model (pick one with --model), got \"a\", \"b\"");
    EXPECT_EQ(prom(two, "b").alpha, (std::vector<double>{0.2}));
}

// [SECTION] vLLM per-request detailed metrics ---------------------------------------------

TEST(VllmRequests, TheFixtureGivesItsStepsLengthsAndDomains) {
    std::ifstream in(FIX + "vllm_requests.jsonl", std::ios::binary);
    const std::vector<ImportedRequest> r = vllm_requests_read(in, "fixture", ImportOptions{}, 1 << 20);
    ASSERT_EQ(r.size(), 4u);
    EXPECT_EQ(triples(r[0].steps), (Triples{{3, 3, 2}, {3, 3, 0}, {3, 3, 3}, {3, 3, 1}}));
    EXPECT_EQ(std::tie(r[0].prompt_len, r[0].output_len, r[0].domain, r[0].line), std::make_tuple(42, 12, std::string("default"), int64_t(1)));
    // per_step_verified: step 0 drafted 3, verified 2
    EXPECT_EQ(triples(r[1].steps), (Triples{{3, 2, 1}, {2, 2, 2}}));
    EXPECT_EQ(std::tie(r[1].prompt_len, r[1].output_len, r[1].domain), std::make_tuple(0, 0, std::string("code")));
    EXPECT_EQ(triples(r[2].steps), (Triples{{1, 1, 0}}));
    EXPECT_EQ(std::tie(r[2].prompt_len, r[2].line), std::make_tuple(5, int64_t(4))) << "the blank line 3 is skipped";
    // the histogram [2, 0, 1] at k = 2: two steps accepting 0, one accepting 2, in some order
    Triples h = triples(r[3].steps);
    std::sort(h.begin(), h.end());
    EXPECT_EQ(h, (Triples{{2, 2, 0}, {2, 2, 0}, {2, 2, 2}}));
}

TEST(VllmRequests, BadRecordsAreOneLineErrors) {
    EXPECT_EQ(error_of([] { requests("{\"per_step_accepted\":[1,3],\"per_step_drafted\":[3,3],\"per_step_verified\":[3,2]}\n"); }),
              "r.jsonl:1: per_step_accepted[1]: expected at most the drafts verified, 2, got 3");
    EXPECT_EQ(error_of([] { requests("\n{\"per_step_accepted\":[1],\"per_step_drafted\":[3,3]}\n"); }),
              "r.jsonl:2: per_step_drafted: expected an array of 1 entries (as per_step_accepted), got an array of 2 entries");
    EXPECT_EQ(error_of([] { requests("{\"metrics\":{\"speculative_decoding\":{\"per_step_accepted\":[1],\"per_step_drafted\":[2],\"num_spec_steps\":2}}}\n"); }),
              "r.jsonl:1: metrics.speculative_decoding.num_spec_steps: expected 1 (the steps given), got 2");
    EXPECT_EQ(error_of([] { requests("{\"speculative_decoding\":{\"per_step_accepted\":[1.5],\"per_step_drafted\":[2]}}\n"); }),
              "r.jsonl:1: speculative_decoding.per_step_accepted[0]: expected an integer in [0, 64], got 1.5");
    EXPECT_EQ(error_of([] { requests("{\"metrics\":{\"speculative_decoding\":null}}\n"); }),
              "r.jsonl:1: metrics.speculative_decoding: expected an object (null: the request ran with n > 1 or without "
              "per-request metrics), got null");
    EXPECT_EQ(error_of([] { requests("{\"speculative_decoding\":{\"acceptance_histogram\":[3,1]}}\n"); }),
              "r.jsonl:1: speculative_decoding.num_spec_tokens: expected the drafts per step (a histogram alone cannot "
              "tell verified from drafted, as under adaptive verification; give per_step_accepted and "
              "per_step_drafted), got nothing");
    EXPECT_EQ(error_of([] { requests("{\"per_step_accepted\":[1]\n"); }).substr(0, 62),
              "r.jsonl:1: json: expected a JSON object, got invalid JSON (col");
}

// [SECTION] AIPerf records -------------------------------------------------------------------

TEST(AiperfRecords, TheFixtureGivesHistogramAndPerStepRequests) {
    std::ifstream in(FIX + "aiperf_records.jsonl", std::ios::binary);
    AiperfRead a = aiperf_records_read(in, "fixture", ImportOptions{}, 1 << 20);
    EXPECT_EQ(a.engine, "vllm");
    EXPECT_EQ(a.skipped, 1) << "the error record has no spec_decode_acceptance";
    ASSERT_EQ(a.requests.size(), 2u);
    // {"0": 2, "1": 1, "3": 3} at k = 3
    Triples h = triples(a.requests[0].steps);
    EXPECT_FALSE(std::is_sorted(h.begin(), h.end())) << "histogram steps replay in a mixed order, not misses first";
    std::sort(h.begin(), h.end());
    EXPECT_EQ(h, (Triples{{3, 3, 0}, {3, 3, 0}, {3, 3, 1}, {3, 3, 3}, {3, 3, 3}, {3, 3, 3}}));
    EXPECT_EQ(std::tie(a.requests[0].prompt_len, a.requests[0].output_len), std::make_tuple(100, 40));
    // num_spec_tokens null (adaptive): the per-step arrays carry it
    EXPECT_EQ(triples(a.requests[1].steps), (Triples{{4, 4, 0}, {2, 2, 2}}));
    EXPECT_EQ(std::tie(a.requests[1].prompt_len, a.requests[1].output_len, a.requests[1].line),
              std::make_tuple(7, 9, int64_t(3)));
}

TEST(AiperfRecords, AHistogramThatDisagreesWithItsTotalsIsRefused) {
    // AIPerf's documented illustrative record: the histogram sums to 278 accepted drafts, the record says 281
    std::istringstream in(
        "{\"metadata\":{},\"metrics\":{},\"spec_decode_acceptance\":{\"engine\":\"vllm\",\"mean_acceptance_length\":3.18,"
        "\"draft_acceptance_rate\":0.436,\"acceptance_histogram\":{\"0\":34,\"1\":22,\"2\":19,\"3\":16,\"4\":15,\"5\":22},"
        "\"num_accepted_draft_tokens\":281,\"num_draft_tokens\":640,\"num_spec_steps\":128,\"num_spec_tokens\":5}}\n");
    EXPECT_EQ(error_of([&] { aiperf_records_read(in, "p.jsonl", ImportOptions{}, 1 << 20); }),
              "p.jsonl:1: spec_decode_acceptance.num_accepted_draft_tokens: expected 278 (the accepted drafts of the "
              "steps given), got 281");
    std::istringstream none("{\"metadata\":{},\"metrics\":{}}\n");
    EXPECT_EQ(error_of([&] { aiperf_records_read(none, "p.jsonl", ImportOptions{}, 1 << 20); }),
              "p.jsonl: spec_decode_acceptance: expected records with spec-decode acceptance (profile_export.jsonl at "
              "--export-level records), got 1 records without it");
    std::istringstream key("{\"spec_decode_acceptance\":{\"acceptance_histogram\":{\"x\":1},\"num_spec_tokens\":2}}\n");
    EXPECT_EQ(error_of([&] { aiperf_records_read(key, "p.jsonl", ImportOptions{}, 1 << 20); }),
              "p.jsonl:1: spec_decode_acceptance.acceptance_histogram: expected integer keys (accepted drafts per "
              "step), got \"x\"");
}

// A whole file that is one pretty-printed document (AIPerf's documented
// record layout, here with totals that agree with its histogram), or an
// array of records, reads as JSON Lines would; a broken one keeps line 1's error.
TEST(AiperfRecords, APrettyPrintedDocumentOrArrayIsAccepted) {
    std::istringstream doc("{\n  \"metadata\": { \"x\": 1 },\n  \"metrics\": {},\n  \"spec_decode_acceptance\": {\n"
                           "    \"engine\": \"vllm\",\n"
                           "    \"acceptance_histogram\": {\"0\": 34, \"1\": 22, \"2\": 19, \"3\": 16, \"4\": 15, \"5\": 22},\n"
                           "    \"num_accepted_draft_tokens\": 278,\n    \"num_draft_tokens\": 640,\n"
                           "    \"num_spec_steps\": 128,\n    \"num_spec_tokens\": 5\n  }\n}\n");
    AiperfRead a = aiperf_records_read(doc, "doc.json", ImportOptions{}, 1 << 20);
    ASSERT_EQ(a.requests.size(), 1u);
    EXPECT_EQ(a.requests[0].steps.size(), 128u);
    EXPECT_EQ(a.requests[0].line, 1);
    std::istringstream array("[\n {\"per_step_accepted\": [1], \"per_step_drafted\": [2]},\n"
                             " {\"per_step_accepted\": [0, 2], \"per_step_drafted\": [2, 2]}\n]\n");
    const std::vector<ImportedRequest> r = vllm_requests_read(array, "a.json", ImportOptions{}, 1 << 20);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(triples(r[1].steps), (Triples{{2, 2, 0}, {2, 2, 2}}));
    EXPECT_EQ(error_of([] { requests("{\n  \"choices\": [ ... ]\n}\n"); }).substr(0, 56),
              "r.jsonl:1: json: expected a JSON object, got invalid JSO");
    EXPECT_EQ(error_of([] { requests("[1, 2]\n"); }), "r.jsonl:1: [0]: expected a JSON object, got 1");
}

// [SECTION] importer runs: not verified is not rejected -------------------------------------------

// Steps (drafted, verified, accepted) = (3,2,2) x2, (3,3,3), (3,3,2): slot 3
// is verified by two steps (both with drafts 1-2 accepted), one accepts it:
// alpha_3 = 1/2. Counting the two unverified third drafts as rejections
// would give 1/4. Slots 1 and 2: every step verified them and accepted
// them: 1 and 1.
TEST(ImporterRun, PerSlotRatesComeFromTheVerifiedSlotsOnly) {
    ScratchDir dir{"specplan_import"};
    TraceDb db = trace_db_open(dir.file("s.specdb"), TRACE_CREATE);
    ImportedRequest q;
    q.domain = "chat";
    q.steps = {{3, 2, 2}, {3, 2, 2}, {3, 3, 3}, {3, 3, 2}};
    ImportOptions opt;
    opt.verify_method = VERIFY_SAMPLING;
    opt.temperature = 0.7;
    ImportSummary s = trace_import_steps(db, opt, "vllm-requests", "x.jsonl", {q});
    EXPECT_EQ(s.gamma, 3);
    const sp::Run run = trace_db_run(db, s.run_id);
    EXPECT_EQ(std::tie(run.producer, run.verify_method, run.complete), std::make_tuple(PRODUCER_IMPORTER, VERIFY_SAMPLING, true));
    EXPECT_EQ(trace_db_requests(db, s.run_id).at(0).output_len, 1 + 3 + 3 + 4 + 3) << "1 + sum (accepted + 1)";
    const StepStats st = trace_step_stats(db, s.run_id);
    EXPECT_EQ(st.alpha, (std::vector<double>{1.0, 1.0, 0.5}));
    EXPECT_EQ(st.at_risk, (std::vector<int64_t>{4, 4, 2}));
    EXPECT_EQ(std::tie(st.drafted, st.verified, st.accepted), std::make_tuple(int64_t(12), int64_t(10), int64_t(9)));
    std::vector<Step> rows;
    trace_db_for_each_step(db, s.run_id, [&](const Step& x) { rows.push_back(x); });
    ASSERT_EQ(rows.size(), 4u);
    EXPECT_EQ(std::tie(rows[0].drafted, rows[0].verify_len, rows[0].n_accepted, rows[0].bonus),
              std::make_tuple(3, 2, 2, true));
    EXPECT_EQ(std::tie(rows[3].drafted, rows[3].verify_len, rows[3].n_accepted, rows[3].bonus),
              std::make_tuple(3, 3, 2, false));
}

// The vllm_requests fixture's ten steps, worked by hand: slot 1 verified by
// all 10, accepted by 6; slot 2 verified with slot 1 accepted by 6, accepted
// by 4; slot 3 by 2 (request 1's first step drafted 3 but verified 2), 1.
TEST(ImporterRun, TheVllmRequestsFixturePoolsToHandWorkedRates) {
    ScratchDir dir{"specplan_import"};
    std::ifstream in(FIX + "vllm_requests.jsonl", std::ios::binary);
    TraceDb db = trace_db_open(dir.file("v.specdb"), TRACE_CREATE);
    ImportSummary s = trace_import_steps(db, ImportOptions{}, "vllm-requests", "fixture",
                                         vllm_requests_read(in, "fixture", ImportOptions{}, 1 << 20));
    EXPECT_EQ(std::tie(s.gamma, s.requests, s.steps), std::make_tuple(3, int64_t(4), int64_t(10)));
    const StepStats st = trace_step_stats(db, s.run_id);
    EXPECT_EQ(st.at_risk, (std::vector<int64_t>{10, 6, 2}));
    EXPECT_DOUBLE_EQ(st.alpha[0], 0.6);
    EXPECT_DOUBLE_EQ(st.alpha[1], 4.0 / 6.0);
    EXPECT_DOUBLE_EQ(st.alpha[2], 0.5);
    std::vector<int> out;
    for (const Request& q : trace_db_requests(db, s.run_id)) out.push_back(q.output_len);
    EXPECT_EQ(out, (std::vector<int>{12, 1 + 2 + 3, 1 + 1, 1 + 1 + 1 + 3}));
}

TEST(ImporterRun, AGammaBelowTheDraftsShownIsRefusedAndNothingIsWritten) {
    ScratchDir dir{"specplan_import"};
    TraceDb db = trace_db_open(dir.file("g.specdb"), TRACE_CREATE);
    ImportedRequest q;
    q.steps = {{4, 4, 1}};
    ImportOptions opt;
    opt.gamma = 3;
    EXPECT_EQ(error_of([&] { trace_import_steps(db, opt, "aiperf", "a.jsonl", {q}); }),
              "a.jsonl: --gamma: expected at least the most drafts of any step (4), got 3");
    EXPECT_EQ(trace_db_counts(db).runs, 0);
}

// [SECTION] DeepSpec confidence records ---------------------------------------------------

// Rows (L, labels): (3, 110), (3, 100), (2, 11), (3, 111). Slot 1: 4 of 4.
// Slot 2: all four observe it, slot 1 accepted in all four, 3 accept it.
// Slot 3: rows 1, 2 and 4 observe it; slots 1-2 accepted in rows 1 and 4;
// row 4 accepts it: 1/2. Row 3 stopped at EOS after 2 drafts: counting its
// missing third slot as a rejection would give 1/3. survival = 1, .75,
// .375; tau = 1 + 1 + .75 + .375 = 3.125.
TEST(DeepSpec, ProposalsBecomePositionsWithVerifiedSlots) {
    ScratchDir dir{"specplan_import"};
    const std::string path = FIX + "gsm8k/confidence_records.jsonl";
    std::ifstream in(path, std::ios::binary);
    TraceDb db = trace_db_open(dir.file("d.specdb"), TRACE_CREATE);
    ImportSummary s = deepspec_import(db, in, path, ImportOptions{}, 1 << 20);
    EXPECT_EQ(std::tie(s.gamma, s.requests, s.positions), std::make_tuple(3, int64_t(1), int64_t(4)));
    const std::vector<Request> reqs = trace_db_requests(db, s.run_id);
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].domain, "gsm8k") << "the <dataset> folder";
    Positions p;
    ASSERT_TRUE(trace_db_positions(db, reqs[0].id, &p));
    EXPECT_EQ(p.verified, (std::vector<uint8_t>{3, 3, 2, 3}));
    EXPECT_EQ(p.beta, (std::vector<float>{1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 1}));
    EXPECT_EQ(p.conf_logit[0], 2.0f);
    EXPECT_EQ(p.conf_logit[2], -0.5f);
    EXPECT_NEAR(p.conf_prob[0], 0.8807970779778823, 1e-7);  // sigma(2)
    EXPECT_NEAR(p.conf_prob[2], 0.3775406687981454, 1e-7);  // sigma(-0.5)

    const std::vector<AcceptanceStats> st = trace_acceptance_stats(db, s.run_id);
    ASSERT_EQ(st.size(), 2u);
    EXPECT_EQ(st[0].n_anchors, 4);
    EXPECT_EQ(st[0].alpha, (std::vector<double>{1.0, 0.75, 0.5}));
    EXPECT_EQ(st[0].survival, (std::vector<double>{1.0, 0.75, 0.375}));
    EXPECT_DOUBLE_EQ(st[0].tau, 3.125);

    // calibrate sees the same slots: 4, 4 and 3 rows observe slots 1, 2, 3
    CalibRows rows;
    rows.gamma = 3;
    calib_rows_append(rows, p);
    EXPECT_EQ(std::make_tuple(calib_rows_count(rows, 1), calib_rows_count(rows, 2), calib_rows_count(rows, 3)),
              std::make_tuple(int64_t(4), int64_t(4), int64_t(3)));
}

TEST(DeepSpec, BadRecordsAreOneLineErrorsAndWriteNothing) {
    ScratchDir dir{"specplan_import"};
    TraceDb db = trace_db_open(dir.file("d.specdb"), TRACE_CREATE);
    auto run = [&](const std::string& text) {
        std::istringstream in(text);
        deepspec_import(db, in, "c.jsonl", ImportOptions{}, 1 << 20);
    };
    const std::string good = "{\"logits\": [1.0, 2.0], \"labels\": [1, 0]}\n";
    EXPECT_EQ(error_of([&] { run(good + "{\"logits\": [1.0, 2.0, 3.0], \"labels\": [1, 0, 1]}\n"); }),
              "c.jsonl:2: labels[2]: expected 0 after a 0 (an accept-prefix mask: slot k is accepted only with slots "
              "1..k-1), got 1");
    EXPECT_EQ(error_of([&] { run(good + "{\"logits\": [1.0], \"labels\": [1, 0]}\n"); }),
              "c.jsonl:2: labels: expected an array of 1 entries (as logits), got an array of 2 elements");
    EXPECT_EQ(error_of([&] { run("{\"logits\": [], \"labels\": []}\n"); }),
              "c.jsonl:1: logits: expected an array of 1..64 numbers, got an array of 0 elements");
    EXPECT_EQ(error_of([&] { run("{\"logits\": [1.0, \"x\"], \"labels\": [1, 1]}\n"); }),
              "c.jsonl:1: logits[1]: expected a finite float32 number, got \"x\"");
    EXPECT_EQ(error_of([&] { run("{\"labels\": [1]}\n"); }),
              "c.jsonl:1: logits: expected an array of raw confidence logits, got nothing");
    EXPECT_EQ(error_of([&] { run("{\"logits\": [1.0], \"labels\": [2]}\n"); }),
              "c.jsonl:1: labels[0]: expected an integer in [0, 1], got 2");
    EXPECT_EQ(trace_db_counts(db).runs, 0);
}

// Schema 4's fields survive export -> import -> export, byte for byte, and
// are written as documented in trace_jsonl.h.
TEST(ImporterRun, VerifiedDraftedAndTheMethodSurviveTheJsonlRoundTrip) {
    ScratchDir dir{"specplan_import"};
    TraceDb db = trace_db_open(dir.file("a.specdb"), TRACE_CREATE);
    ImportOptions opt;
    opt.verify_method = VERIFY_BLOCK;
    ImportedRequest q;
    q.steps = {{3, 2, 1}};
    trace_import_steps(db, opt, "vllm-requests", "x", {q});
    const std::string path = FIX + "gsm8k/confidence_records.jsonl";
    std::ifstream in(path, std::ios::binary);
    deepspec_import(db, in, path, opt, 1 << 20);
    std::ostringstream first;
    trace_export_jsonl(db, first);
    const std::string text = first.str();
    EXPECT_NE(text.find("\"complete\":true,\"verify_method\":\"block\"}"), std::string::npos) << text;
    EXPECT_NE(text.find("\"host_ns\":0,\"drafted\":3}"), std::string::npos) << text;
    EXPECT_NE(text.find(",\"verified\":[3,3,2,3]}"), std::string::npos) << text;
    TraceDb copy = trace_db_open(dir.file("b.specdb"), TRACE_CREATE);
    std::istringstream back(text);
    trace_import_jsonl(copy, back, "first");
    std::ostringstream second;
    trace_export_jsonl(copy, second);
    EXPECT_EQ(second.str(), text);
}

// [SECTION] the command line --------------------------------------------------------------

TEST(ImportCli, VllmPromPrintsAScenarioAlphaLine) {
    ScratchDir dir{"specplan_import"};
    CliResult r = cli_run(dir, "traces import --format vllm-prom " + FIX + "vllm_qwen3_8b_dspark.prom");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("\nalpha = [0.9400, 0.9255, 0.9310, 0.9136, 0.9324, 0.9130, 0.9365]\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("mean acceptance length 6.2700"), std::string::npos) << r.out;
    CliResult db = cli_run(dir, "traces import --format vllm-prom " + FIX + "vllm_qwen3_8b_dspark.prom " + dir.file("x.specdb"));
    EXPECT_NE(db.code, 0);
    EXPECT_EQ(db.err_lines(), 1) << db.err;
}

// A bad line in the middle: one error line, a non-zero exit, the store
// exactly as it was (one transaction), and no new store left behind.
TEST(ImportCli, ABadFileLeavesTheStoreUntouched) {
    ScratchDir dir{"specplan_import"};
    const std::string store = dir.file("s.specdb");
    ASSERT_EQ(cli_run(dir, "traces import --format aiperf --verify greedy " + FIX + "aiperf_records.jsonl " + store).code, 0);
    {
        std::ofstream bad(dir.file("bad.jsonl"));
        bad << "{\"per_step_accepted\":[1],\"per_step_drafted\":[2]}\n"
               "{\"per_step_accepted\":[3],\"per_step_drafted\":[2]}\n";
    }
    const std::string before = slurp(store);
    CliResult r = cli_run(dir, "traces import --format vllm-requests " + dir.file("bad.jsonl") + " " + store);
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.err, "specplan: " + dir.file("bad.jsonl") +
                         ":2: per_step_accepted[0]: expected at most the drafts verified, 2, got 3\n");
    TraceDb db = trace_db_open(store, TRACE_READ);
    EXPECT_EQ(trace_db_counts(db).runs, 1);
    EXPECT_EQ(trace_db_runs(db).at(0).verify_method, VERIFY_GREEDY);
    CliResult fresh = cli_run(dir, "traces import --format vllm-requests " + dir.file("bad.jsonl") + " " + dir.file("new.specdb"));
    EXPECT_NE(fresh.code, 0);
    EXPECT_FALSE(std::filesystem::exists(dir.file("new.specdb"))) << "a refused import left a store behind";
    CliResult flag = cli_run(dir, "traces import --format vllm-requests --verify fast " + FIX + "vllm_requests.jsonl " + store);
    EXPECT_EQ(flag.code, 2) << "a bad command line";
    EXPECT_EQ(flag.err_lines(), 1) << flag.err;
}

}  // namespace
}  // namespace sp
