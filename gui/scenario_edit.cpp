// scenario_edit.cpp: see scenario_edit.h.
#include "gui/scenario_edit.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "traces/trace_db.h"

namespace sp {

namespace fs = std::filesystem;

ScenarioDraft draft_parse(const std::string& text, const std::string& path) {
    ScenarioDraft d;
    d.path = path;
#if TOML_EXCEPTIONS
    try {
        d.table = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        throw Error(path + ":" + std::to_string(e.source().begin.line) + ":" +
                    std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
    }
#else
    toml::parse_result res = toml::parse(text, path);
    if (!res) {
        const toml::parse_error& e = res.error();
        throw Error(path + ":" + std::to_string(e.source().begin.line) + ":" +
                    std::to_string(e.source().begin.column) + ": " + std::string(e.description()));
    }
    d.table = std::move(res).table();
#endif
    return d;
}

ScenarioDraft draft_load(const std::string& path) {
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) throw Error(path + ": cannot read (no such file)");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in || in.bad()) throw Error(path + ": cannot read");
    return draft_parse(text.str(), path);
}

std::string draft_text(const ScenarioDraft& d) {
    std::ostringstream out;
    out << toml::toml_formatter(d.table) << "\n";
    return out.str();
}

Scenario draft_validate(const ScenarioDraft& d) { return scenario_parse(draft_text(d), d.path); }

// A relative reference written for a file in `from` rewritten for one in `to`.
static std::string rebase(const std::string& p, const fs::path& from, const fs::path& to) {
    fs::path q(p);
    if (q.is_absolute() || p.empty()) return p;
    fs::path abs = fs::absolute(from / q).lexically_normal();
    fs::path rel = abs.lexically_relative(fs::absolute(to).lexically_normal());
    return rel.empty() ? abs.string() : rel.generic_string();
}

void draft_save(ScenarioDraft& d, const std::string& path) {
    ScenarioDraft out = d;
    const fs::path from = fs::path(d.path).parent_path(), to = fs::path(path).parent_path();
    for (const char* key : {"acceptance.trace", "cost.profiles"}) {
        std::string p = draft_string(out, key, "");
        if (!p.empty()) draft_set(out, key, rebase(p, from, to));
    }
    // A unique temporary beside the target (mkstemp), so that two saves of one
    // path never share it; synced, then renamed over the path. The file keeps
    // its permissions (a new one gets 0666 less the umask, as any new file).
    const fs::path target(path);
    std::string name = ".";
    name += target.filename().string();
    name += ".tmp.XXXXXX";
    std::string tmp = (target.parent_path() / name).string();
    const int fd = ::mkstemp(tmp.data());
    if (fd < 0) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
    struct stat st {};
    mode_t mode = 0;
    if (::stat(path.c_str(), &st) == 0) {
        mode = st.st_mode & 07777;
    } else {
        mode = ::umask(0);
        ::umask(mode);
        mode = 0666 & ~mode;
    }
    const std::string text = draft_text(out);
    bool ok = ::fchmod(fd, mode) == 0;
    for (size_t done = 0; ok && done < text.size();) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        ok = n > 0;
        if (ok) done += size_t(n);
    }
    const int err = errno;
    ok = ok && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
        ::unlink(tmp.c_str());
        throw Error(path + ": write failed (" + std::strerror(err) + ")");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int rerr = errno;
        ::unlink(tmp.c_str());
        throw Error(path + ": cannot replace (" + std::strerror(rerr) + ")");
    }
    out.path = path;
    d = std::move(out);
}

// --- values by dotted key

static const toml::node* node_at(const ScenarioDraft& d, std::string_view key) {
    return d.table.at_path(key).node();
}

double draft_number(const ScenarioDraft& d, std::string_view key, double def) {
    const toml::node* n = node_at(d, key);
    if (!n) return def;
    if (auto v = n->value<double>()) return *v;  // integers convert too
    return def;
}

int64_t draft_int(const ScenarioDraft& d, std::string_view key, int64_t def) {
    const toml::node* n = node_at(d, key);
    if (!n || !n->is_integer()) return def;
    return *n->value<int64_t>();
}

std::string draft_string(const ScenarioDraft& d, std::string_view key, const std::string& def) {
    const toml::node* n = node_at(d, key);
    if (!n || !n->is_string()) return def;
    return *n->value<std::string>();
}

bool draft_bool(const ScenarioDraft& d, std::string_view key, bool def) {
    const toml::node* n = node_at(d, key);
    if (!n || !n->is_boolean()) return def;
    return *n->value<bool>();
}

std::vector<double> draft_numbers(const ScenarioDraft& d, std::string_view key) {
    std::vector<double> v;
    const toml::node* n = node_at(d, key);
    if (const toml::array* a = n ? n->as_array() : nullptr)
        for (const toml::node& e : *a)
            if (auto x = e.value<double>()) v.push_back(*x);
    return v;
}

std::vector<std::string> draft_strings(const ScenarioDraft& d, std::string_view key) {
    std::vector<std::string> v;
    const toml::node* n = node_at(d, key);
    if (const toml::array* a = n ? n->as_array() : nullptr)
        for (const toml::node& e : *a)
            if (auto x = e.value<std::string>()) v.push_back(*x);
    return v;
}

// The table that holds the last component of `key`, created on the way, and that component.
static toml::table& parent_of(ScenarioDraft& d, std::string_view key, std::string_view* leaf) {
    toml::table* t = &d.table;
    size_t start = 0;
    for (size_t dot; (dot = key.find('.', start)) != std::string_view::npos; start = dot + 1) {
        std::string_view part = key.substr(start, dot - start);
        toml::node* n = t->get(part);
        if (!n || !n->is_table()) {
            t->insert_or_assign(part, toml::table{});
            n = t->get(part);
        }
        t = n->as_table();
    }
    *leaf = key.substr(start);
    return *t;
}

template <typename V>
static void set_value(ScenarioDraft& d, std::string_view key, V&& v) {
    std::string_view leaf;
    toml::table& t = parent_of(d, key, &leaf);
    t.insert_or_assign(leaf, std::forward<V>(v));
}

void draft_set(ScenarioDraft& d, std::string_view key, double v) { set_value(d, key, v); }
void draft_set(ScenarioDraft& d, std::string_view key, int64_t v) { set_value(d, key, v); }
void draft_set(ScenarioDraft& d, std::string_view key, const std::string& v) { set_value(d, key, v); }
void draft_set(ScenarioDraft& d, std::string_view key, bool v) { set_value(d, key, v); }

void draft_set(ScenarioDraft& d, std::string_view key, const std::vector<double>& v) {
    toml::array a;
    for (double x : v) a.push_back(x);
    set_value(d, key, std::move(a));
}

void draft_set_ints(ScenarioDraft& d, std::string_view key, const std::vector<int64_t>& v) {
    toml::array a;
    for (int64_t x : v) a.push_back(x);
    set_value(d, key, std::move(a));
}

void draft_set(ScenarioDraft& d, std::string_view key, const std::vector<std::string>& v) {
    toml::array a;
    for (const std::string& x : v) a.push_back(x);
    set_value(d, key, std::move(a));
}

void draft_erase(ScenarioDraft& d, std::string_view key) {
    const size_t dot = key.rfind('.');
    toml::table* t = &d.table;
    if (dot != std::string_view::npos) t = d.table.at_path(key.substr(0, dot)).as_table();
    if (t) t->erase(dot == std::string_view::npos ? key : key.substr(dot + 1));
}

toml::array* draft_domains(ScenarioDraft& d) {
    toml::node* w = d.table.get("workload");
    toml::table* wt = w ? w->as_table() : nullptr;
    toml::node* dom = wt ? wt->get("domain") : nullptr;
    return dom ? dom->as_array() : nullptr;
}

}  // namespace sp
