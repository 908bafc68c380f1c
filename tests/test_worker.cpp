// test_worker.cpp: the dashboard's background worker (gui/worker.h). A new
// task cancels the running one, replaces any waiting one (only the newest of
// a burst runs), and stop cancels and joins.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gui/worker.h"

using namespace sp;
using namespace std::chrono_literals;

static void wait_idle(Worker& w) {
    for (int i = 0; i < 5000 && w.busy; i++) std::this_thread::sleep_for(1ms);
    ASSERT_FALSE(w.busy) << "the worker did not go idle within 5 s";
}

TEST(Worker, ANewTaskCancelsTheRunningOneAndOnlyTheNewestOfABurstRuns) {
    Worker w;
    worker_start(w);
    std::mutex mu;
    std::vector<int> ran;
    std::mutex gate;   // held through the burst, so the first task cannot end before the burst is in
    std::atomic<bool> started{false}, saw_cancel{false};
    worker_submit(w, [&](const std::atomic<bool>& cancel) {
        started = true;
        while (!cancel) std::this_thread::sleep_for(1ms);   // a sweep that only stops when told
        saw_cancel = true;
        std::lock_guard<std::mutex> g(gate);
        std::lock_guard<std::mutex> lock(mu);
        ran.push_back(0);
    });
    while (!started) std::this_thread::sleep_for(1ms);
    std::unique_lock<std::mutex> burst(gate);
    for (int i = 1; i <= 3; i++)
        worker_submit(w, [&, i](const std::atomic<bool>&) {
            std::lock_guard<std::mutex> lock(mu);
            ran.push_back(i);
        });
    burst.unlock();
    wait_idle(w);
    EXPECT_TRUE(saw_cancel);
    EXPECT_EQ(ran, (std::vector<int>{0, 3}));   // 1 and 2 were replaced before they started
    worker_stop(w);
    worker_stop(w);   // twice is fine
}

TEST(Worker, ATaskRunsWithItsCancelFlagClear) {
    Worker w;
    worker_start(w);
    std::atomic<int> cancelled_at_start{-1};
    worker_submit(w, [&](const std::atomic<bool>& cancel) { cancelled_at_start = cancel ? 1 : 0; });
    wait_idle(w);
    EXPECT_EQ(cancelled_at_start, 0);
    worker_stop(w);
}

TEST(Worker, StopCancelsARunningTask) {
    Worker w;
    worker_start(w);
    std::atomic<bool> started{false}, finished{false};
    worker_submit(w, [&](const std::atomic<bool>& cancel) {
        started = true;
        while (!cancel) std::this_thread::sleep_for(1ms);
        finished = true;
    });
    while (!started) std::this_thread::sleep_for(1ms);
    worker_stop(w);   // returns only after the task saw the flag
    EXPECT_TRUE(finished);
}
