#include POLICY_CPP
#include "traces/rng.h"
#include <chrono>
#include <cstdio>
#include <ctime>
using namespace sp;
static double flat(const void*, int) { return 1.0; }
int main() {
    const int R = 256, G = 7;
    Rng rng = rng_seed(1);
    std::vector<float> conf(R * G); for (auto& c : conf) c = (float)(0.5 + 0.5 * rng_uniform(rng));
    std::vector<int> ml(R, G), ell(R);
    PolicyInput in; in.n = R; in.gamma = G; in.conf = conf.data(); in.max_len = ml.data(); in.token_budget = 8192;
    in.step_time = StepTime{flat, nullptr};
    auto timeit = [&](const char* name, auto&& f) {
        double best = 1e9;
        for (int rep = 0; rep < 7; rep++) {
            timespec t0, t1; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
            for (int i = 0; i < 2000; i++) f(i);
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
            best = std::min(best, ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) * 1e-3) / 2000);
        }
        printf("%-12s %.2f us\n", name, best);
    };
    long sink = 0;
    timeit("init", [&](int i) { conf[i % (R*G)] = (float)(0.5 + 0.5 * rng_uniform(rng)); Ranking k; ranking_init(k, in, conf.data(), G, 1); sink += 1; (void)k; });
    timeit("init+drain", [&](int i) { conf[i % (R*G)] = (float)(0.5 + 0.5 * rng_uniform(rng)); Ranking k; ranking_init(k, in, conf.data(), G, 1); int r, j; float a; while (ranking_next(k, &r, &j, &a)) sink += r; });
    timeit("dspark", [&](int i) { conf[i % (R*G)] = (float)(0.5 + 0.5 * rng_uniform(rng)); sink += (long)dspark_schedule(in, true, ell.data()); });
    printf("%ld\n", sink);
}
