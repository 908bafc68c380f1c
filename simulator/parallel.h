// parallel.h: the simulator's one thread pool. Tasks 0..n-1 on `threads`
// threads (0 = every core), each writing only its own result slot, so the
// order of completion cannot change a result. The first exception a task
// throws stops the tasks not yet started and is rethrown on the caller's
// thread (a point's sp::Error, such as the simulated clock's, reaches the
// command line as one line, not std::terminate).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace sp {

template <typename F>
void parallel_for(size_t n, int threads, F task) {
    std::atomic<size_t> next{0};
    std::atomic<bool> stop{false};
    std::mutex failed_mu;
    std::exception_ptr failed;
    auto worker = [&] {
        for (size_t i; !stop && (i = next.fetch_add(1)) < n;) {
            try {
                task(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(failed_mu);
                if (!failed) failed = std::current_exception();
                stop = true;
                return;
            }
        }
    };
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    const size_t nthreads = std::min<size_t>(n, threads > 0 ? static_cast<size_t>(threads) : hw);
    std::vector<std::thread> pool;
    for (size_t t = 1; t < nthreads; t++) pool.emplace_back(worker);
    worker();
    for (std::thread& t : pool) t.join();
    if (failed) std::rethrow_exception(failed);
}

}  // namespace sp
