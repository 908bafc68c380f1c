// fuzz_file.h: for targets whose parser reads a path, not bytes: one scratch
// file per fuzzing process (in /dev/shm when there is one, else $TMPDIR or
// /tmp), rewritten with each input and removed at exit, with the side files a
// SQLite open may leave beside it (-journal, -wal, -shm).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace sp_fuzz {

class ScratchFile {
  public:
    explicit ScratchFile(const char* stem) {
        const char* tmp = std::getenv("TMPDIR");
        std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp";
        std::string templ = dir + "/" + stem + "-XXXXXX";
        int fd = mkstemp(templ.data());
        if (fd < 0) {
            std::perror(templ.c_str());
            std::abort();
        }
        close(fd);
        path_ = templ;
    }
    ~ScratchFile() {
        clean_sides();
        std::remove(path_.c_str());
    }
    ScratchFile(const ScratchFile&) = delete;
    ScratchFile& operator=(const ScratchFile&) = delete;

    // Replaces the file's contents with the input; removes the side files of the last one.
    const std::string& write(const uint8_t* data, size_t size) {
        clean_sides();
        std::FILE* f = std::fopen(path_.c_str(), "wb");
        if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
            std::perror(path_.c_str());
            std::abort();
        }
        return path_;
    }
    const std::string& path() const { return path_; }

  private:
    void clean_sides() {
        for (const char* side : {"-journal", "-wal", "-shm"}) std::remove((path_ + side).c_str());
    }
    std::string path_;
};

}  // namespace sp_fuzz
