// worker.cpp: see worker.h.
#include "gui/worker.h"

namespace sp {

static void worker_loop(Worker& w) {
    for (;;) {
        WorkerTask task;
        {
            std::unique_lock<std::mutex> lock(w.mu);
            w.cv.wait(lock, [&] { return w.quit || w.next; });
            if (w.quit) return;
            task = std::move(w.next);
            w.next = nullptr;
            w.cancel = false;
        }
        task(w.cancel);
        std::lock_guard<std::mutex> lock(w.mu);
        if (!w.next) w.busy = false;
    }
}

void worker_start(Worker& w) {
    w.quit = false;
    w.thread = std::thread(worker_loop, std::ref(w));
}

void worker_submit(Worker& w, WorkerTask task) {
    std::lock_guard<std::mutex> lock(w.mu);
    w.next = std::move(task);
    w.cancel = true;  // the running task, if any, is stale now
    w.busy = true;
    w.cv.notify_one();
}

void worker_stop(Worker& w) {
    {
        std::lock_guard<std::mutex> lock(w.mu);
        w.quit = true;
        w.next = nullptr;
        w.cancel = true;
        w.cv.notify_one();
    }
    if (w.thread.joinable()) w.thread.join();
}

}  // namespace sp
