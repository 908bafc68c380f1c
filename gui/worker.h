// worker.h: one background thread that runs the newest task submitted to it.
// Submitting a task cancels the one running (its cancel flag is set; a task
// polls it and returns early) and replaces any task still waiting, so a burst
// of edits costs at most one stale run. Results go back through a Mailbox,
// which the UI thread polls once per frame.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace sp {

using WorkerTask = std::function<void(const std::atomic<bool>& cancel)>;

struct Worker {
    std::thread thread;
    std::mutex mu;
    std::condition_variable cv;
    WorkerTask next;                 // waiting task, empty if none (guarded by mu)
    bool quit = false;               // guarded by mu
    std::atomic<bool> cancel{false}; // set to stop the running task
    std::atomic<bool> busy{false};   // a task is running or waiting
};

void worker_start(Worker& w);
void worker_submit(Worker& w, WorkerTask task);
void worker_stop(Worker& w);         // cancels, joins; safe to call twice

// The newest value a task published; the UI takes it once.
template <typename T>
struct Mailbox {
    std::mutex mu;
    std::shared_ptr<const T> value;  // guarded by mu
};
template <typename T>
void mailbox_put(Mailbox<T>& m, std::shared_ptr<const T> v) {
    std::lock_guard<std::mutex> lock(m.mu);
    m.value = std::move(v);
}
template <typename T>
std::shared_ptr<const T> mailbox_take(Mailbox<T>& m) {
    std::lock_guard<std::mutex> lock(m.mu);
    return std::move(m.value);
}

}  // namespace sp
