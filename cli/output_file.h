// output_file.h: where the CLI's output files go. One rule for every
// --json, --csv and -o that writes a report:
//   "-"            standard output;
//   a regular file, or a path that does not exist yet: a temporary file in
//                  the same folder with a unique name (mkstemp), renamed over
//                  the path once complete and synced. A failed write leaves
//                  the old file as it was and no temporary behind; two
//                  writers of one path never share a temporary. The file
//                  keeps its permissions (a new one gets 0666 less the umask);
//   a symlink, a device (/dev/stdout, /dev/null) or a FIFO: opened and
//                  written as it is, not replaced (so not atomic: a symlink
//                  stays a symlink, /dev/stdout stays the device);
//   this process's stdout or stderr under another name (/dev/stdout while
//                  stdout is redirected to a file, or that file itself):
//                  written to that stream, after what was printed to it;
//   a folder:      refused with one line.
// Missing folders above the path are created. Every failure is sp::Error,
// one line naming the path.
#pragma once

#include <fstream>
#include <ostream>
#include <string>

namespace sp {

class OutputFile {
public:
    explicit OutputFile(const std::string& path);  // opens (or refuses) now
    ~OutputFile();                                 // not committed: the temporary file is removed
    OutputFile(const OutputFile&) = delete;
    OutputFile& operator=(const OutputFile&) = delete;

    std::ostream& stream() { return *out_; }
    // Flushes; for a regular file syncs and renames the temporary over the path.
    void commit();

private:
    std::string path_, tmp_;  // tmp_ empty: written in place or to a std stream
    std::ofstream file_;
    std::ostream* out_ = nullptr;
    bool committed_ = false;
};

// Writes fn(stream)'s output to `path` by the rule above.
template <typename F>
void write_file(const std::string& path, F fn) {
    OutputFile f(path);
    fn(f.stream());
    f.commit();
}

}  // namespace sp
