// output_file.cpp: the CLI's output files (output_file.h).
#include "cli/output_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "traces/trace_db.h"  // Error

namespace sp {

namespace fs = std::filesystem;

// The std stream that `st` is (same device and inode as fd 1 or 2), or null.
static std::ostream* std_stream_of(const struct stat& st) {
    struct stat s {};
    if (::fstat(STDOUT_FILENO, &s) == 0 && s.st_dev == st.st_dev && s.st_ino == st.st_ino) return &std::cout;
    if (::fstat(STDERR_FILENO, &s) == 0 && s.st_dev == st.st_dev && s.st_ino == st.st_ino) return &std::cerr;
    return nullptr;
}

OutputFile::OutputFile(const std::string& path) : path_(path) {
    if (path == "-") {
        out_ = &std::cout;
        return;
    }
    if (path.empty()) throw Error("an output file: expected a path or '-' (stdout), got ''");
    struct stat link {}, target {};
    const bool exists = ::lstat(path.c_str(), &link) == 0;
    const bool resolves = exists && ::stat(path.c_str(), &target) == 0;  // false: a dangling symlink
    if (resolves && S_ISDIR(target.st_mode))
        throw Error(path + ": is a folder; expected a file to write (or '-' for stdout)");
    if (resolves) {
        if (std::ostream* s = std_stream_of(target)) {
            out_ = s;
            return;
        }
    }
    if (!exists) {
        const fs::path parent = fs::path(path).parent_path();
        std::error_code ec;
        if (!parent.empty()) fs::create_directories(parent, ec);
        if (ec) throw Error(path + ": cannot create the folder " + parent.string() + ": " + ec.message());
    }
    if (exists && !S_ISREG(link.st_mode)) {  // a symlink, device or FIFO: written as it is
        file_.open(path, std::ios::binary | std::ios::trunc);
        if (!file_) throw Error(path + ": cannot open for writing: " + std::strerror(errno));
        out_ = &file_;
        return;
    }
    // A regular file or a new one: a unique temporary beside it, renamed over it in commit().
    const fs::path p(path);
    std::string name = ".";  // appended, not "." + ...: GCC 12 warns -Wrestrict on that (a false positive)
    name += p.filename().string();
    name += ".tmp.XXXXXX";
    tmp_ = (p.parent_path() / name).string();
    const int fd = ::mkstemp(tmp_.data());
    if (fd < 0) {
        const int err = errno;
        tmp_.clear();
        throw Error(path + ": cannot write: " + std::strerror(err));
    }
    mode_t mode = link.st_mode & 07777;
    if (!exists) {
        mode = ::umask(0);
        ::umask(mode);
        mode = 0666 & ~mode;
    }
    const bool chmod_ok = ::fchmod(fd, mode) == 0;
    ::close(fd);
    if (chmod_ok) file_.open(tmp_, std::ios::binary | std::ios::trunc);
    if (!chmod_ok || !file_) {
        const int err = errno;
        ::unlink(tmp_.c_str());  // a constructor that throws runs no destructor
        throw Error(path + ": cannot write: " + std::strerror(err));
    }
    out_ = &file_;
}

OutputFile::~OutputFile() {
    if (!committed_ && !tmp_.empty()) {
        if (file_.is_open()) file_.close();
        ::unlink(tmp_.c_str());
    }
}

void OutputFile::commit() {
    if (out_ != &file_) {  // stdout or stderr
        out_->flush();
        if (!*out_) throw Error((path_ == "-" ? std::string("stdout") : path_) + ": write failed");
        committed_ = true;
        return;
    }
    file_.close();
    if (!file_) throw Error(path_ + ": write failed");
    if (!tmp_.empty()) {
        // Synced before the rename: after a crash the path holds the old file or the whole new one.
        const int fd = ::open(tmp_.c_str(), O_RDONLY);
        const bool synced = fd >= 0 && ::fsync(fd) == 0;
        if (fd >= 0) ::close(fd);
        if (!synced || ::rename(tmp_.c_str(), path_.c_str()) != 0)
            throw Error(path_ + ": cannot write: " + std::strerror(errno));
    }
    committed_ = true;
}

}  // namespace sp
