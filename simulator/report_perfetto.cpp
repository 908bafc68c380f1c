// report_perfetto.cpp: see report_perfetto.h.
#include "simulator/report_perfetto.h"

#include <algorithm>
#include <cassert>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace sp {

// ns as µs with three decimals, exactly: 1234567 -> "1234.567".
static std::string micros(int64_t ns) {
    assert(ns >= 0 && "trace times start at 0");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%" PRId64 ".%03d", ns / 1000, static_cast<int>(ns % 1000));
    return buf;
}

static void event(PerfettoTrace& t, const std::string& body) {
    *t.out << (t.any ? ",\n" : "\n") << '{' << body << '}';
    t.any = true;
}

static std::string json_string(const std::string& s) { return nlohmann::json(s).dump(); }

static void metadata(PerfettoTrace& t, const char* what, int pid, int tid, const std::string& args) {
    event(t, std::string("\"name\":\"") + what + "\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) +
                 ",\"tid\":" + std::to_string(tid) + ",\"args\":{" + args + "}");
}

// A complete slice; `args` is the inside of its args object (may be empty).
static void slice(PerfettoTrace& t, const char* name, int pid, int tid, int64_t start, int64_t end,
                  const std::string& args) {
    event(t, std::string("\"name\":\"") + name + "\",\"ph\":\"X\",\"pid\":" + std::to_string(pid) +
                 ",\"tid\":" + std::to_string(tid) + ",\"ts\":" + micros(start) + ",\"dur\":" + micros(end - start) +
                 (args.empty() ? std::string() : ",\"args\":{" + args + "}"));
}

static void counter(PerfettoTrace& t, const char* name, int pid, int64_t ts, const char* series, int64_t v) {
    event(t, std::string("\"name\":\"") + name + "\",\"ph\":\"C\",\"pid\":" + std::to_string(pid) +
                 ",\"ts\":" + micros(ts) + ",\"args\":{\"" + series + "\":" + std::to_string(v) + "}");
}

void perfetto_begin(PerfettoTrace& t, std::ostream& out) {
    t.out = &out;
    *t.out << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[";
}

void perfetto_point(PerfettoTrace& t, const PerfettoPoint& p) {
    assert(t.out && "perfetto_point before perfetto_begin");
    assert(t.pending.empty() && "perfetto_flush the previous point first");
    t.point = p;
    const int replicas = p.replicas;
    t.pid0 = t.next_pid;
    t.next_pid += replicas;
    t.steps_tid.clear();
    t.steps_end.assign(static_cast<size_t>(replicas), 0);
    for (int r = 0; r < replicas; r++) {
        const int pid = t.pid0 + r, tid = t.next_tid++;
        t.steps_tid.push_back(tid);
        metadata(t, "process_name", pid, 0, "\"name\":" + json_string(p.title + ": replica " + std::to_string(r)));
        metadata(t, "process_sort_index", pid, 0, "\"sort_index\":" + std::to_string(pid));
        metadata(t, "thread_name", pid, tid, "\"name\":\"steps\"");
        metadata(t, "thread_sort_index", pid, tid, "\"sort_index\":0");
    }
}

void perfetto_step(PerfettoTrace& t, const PerfettoStep& s, const PerfettoRequestStep* reqs, int n) {
    assert(s.replica >= 0 && s.replica < static_cast<int>(t.steps_end.size()) && "a replica of the point");
    assert(s.draft_ns >= 0 && s.verify_ns >= 0 && s.host_ns >= 0 && "phases take no negative time");
    const int pid = t.pid0 + s.replica, tid = t.steps_tid[static_cast<size_t>(s.replica)];
    int64_t& last = t.steps_end[static_cast<size_t>(s.replica)];
    const int64_t start = std::max(s.start_ns, last), end = start + s.draft_ns + s.verify_ns + s.host_ns;
    last = end;
    int verified = 0, accepted = 0;
    for (int i = 0; i < n; i++) {
        verified += reqs[i].verified;
        accepted += reqs[i].accepted;
    }
    slice(t, "step", pid, tid, start, end,
          "\"decoding\":" + std::to_string(s.decoding) + ",\"batch_tokens\":" + std::to_string(s.batch_tokens) +
              ",\"prefill_tokens\":" + std::to_string(s.prefill_tokens) + ",\"verified\":" + std::to_string(verified) +
              ",\"accepted\":" + std::to_string(accepted));
    int64_t at = start;
    const std::pair<const char*, int64_t> phases[] = {{"draft", s.draft_ns}, {"verify", s.verify_ns}, {"host", s.host_ns}};
    for (const auto& [name, ns] : phases) {
        if (ns == 0) continue;
        slice(t, name, pid, tid, at, at + ns, "");
        at += ns;
    }
    counter(t, "batch tokens", pid, start, "tokens", s.batch_tokens);
    counter(t, "running requests", pid, start, "decoding", s.decoding);
    counter(t, "KV use", pid, start, "tokens", s.kv_used);
    for (int i = 0; i < n; i++) {
        PerfettoTrace::Pending& p = t.pending[reqs[i].key];
        p.replica = s.replica;
        p.steps.push_back({start, end, reqs[i].verified, reqs[i].accepted});
    }
}

// One request's track: its waiting and prefill (when it completed: r), then its decode steps.
static void request_track(PerfettoTrace& t, uint64_t key, int replica, const PerfettoRequest* r,
                          const std::vector<PerfettoTrace::Slice>& steps) {
    const int pid = t.pid0 + replica, tid = t.next_tid++;
    char name[96];
    if (t.point.closed_loop)
        std::snprintf(name, sizeof name, "user %" PRIu64 " #%" PRIu64, key >> 32, key & 0xffffffffu);
    else
        std::snprintf(name, sizeof name, "request %" PRIu64, key);
    std::string label = name;
    const std::vector<std::string>& domains = t.point.domains;
    if (r && r->domain >= 0 && r->domain < static_cast<int>(domains.size()))
        label += " (" + domains[static_cast<size_t>(r->domain)] + ")";
    if (!r) label += " (in flight at the end)";
    metadata(t, "thread_name", pid, tid, "\"name\":" + json_string(label));
    metadata(t, "thread_sort_index", pid, tid, "\"sort_index\":" + std::to_string(tid));
    int64_t last = 0;
    auto put = [&](const char* what, int64_t start, int64_t end, const std::string& args) {
        start = std::max(start, last);
        end = std::max(end, start);
        if (end == start && args.empty()) return;  // no wait at all
        slice(t, what, pid, tid, start, end, args);
        last = end;
    };
    if (r) {
        const std::string lens =
            "\"prompt_tokens\":" + std::to_string(r->prompt_len) + ",\"output_tokens\":" + std::to_string(r->output_len);
        if (!t.point.remote_prefill) {
            put("wait", r->arrival_ns, r->admitted_ns, "");
            put("prefill", r->admitted_ns, r->first_token_ns, lens);
        } else {  // prefilled elsewhere, then waits for a place in the decode batch
            put("prefill (remote)", r->arrival_ns, r->first_token_ns, lens);
            put("wait", r->first_token_ns, r->admitted_ns, "");
        }
    }
    for (const PerfettoTrace::Slice& s : steps)
        put("decode", s.start, s.end,
            "\"verified\":" + std::to_string(s.verified) + ",\"accepted\":" + std::to_string(s.accepted) +
                ",\"emitted\":" + std::to_string(s.accepted + 1));
}

void perfetto_request(PerfettoTrace& t, const PerfettoRequest& r) {
    auto it = t.pending.find(r.key);
    if (it == t.pending.end()) {
        request_track(t, r.key, r.replica, &r, {});
        return;
    }
    request_track(t, r.key, r.replica, &r, it->second.steps);
    t.pending.erase(it);
}

void perfetto_flush(PerfettoTrace& t) {
    std::vector<std::pair<int64_t, uint64_t>> order;  // (first step, key): the map's order is not deterministic
    for (const auto& [key, p] : t.pending) order.push_back({p.steps.front().start, key});
    std::sort(order.begin(), order.end());
    for (const auto& [start, key] : order) {
        const PerfettoTrace::Pending& p = t.pending.at(key);
        request_track(t, key, p.replica, nullptr, p.steps);
    }
    t.pending.clear();
}

void perfetto_end(PerfettoTrace& t) {
    perfetto_flush(t);
    *t.out << "\n]}\n";
}

void PerfettoObserver::on_step(const StepView& v) {
    PerfettoStep s;
    s.replica = v.replica;
    s.start_ns = v.start_ns;
    // the simulator's step is draft then forward; its end is their sum rounded once
    const int64_t dur = v.end_ns - v.start_ns;
    s.draft_ns = std::min(dur, static_cast<int64_t>(std::llround(v.draft_s * 1e9)));
    s.verify_ns = dur - s.draft_ns;
    s.decoding = v.n_decode;
    s.batch_tokens = v.batch_tokens;
    s.prefill_tokens = v.prefill_tokens;
    s.kv_used = v.kv_used;
    reqs.resize(static_cast<size_t>(v.n_decode));
    for (int i = 0; i < v.n_decode; i++) reqs[static_cast<size_t>(i)] = {v.keys[i], v.ell[i], v.accepted[i]};
    perfetto_step(*t, s, reqs.data(), v.n_decode);
}

void PerfettoObserver::on_complete(const CompletedRequest& r) {
    perfetto_request(*t, {r.key, r.replica, r.domain, r.prompt_len, r.output_len, r.arrival_ns, r.admitted_ns,
                          r.first_token_ns, r.done_ns});
}

}  // namespace sp
