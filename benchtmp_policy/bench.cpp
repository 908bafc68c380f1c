#include "simulator/policy.h"
#include "traces/rng.h"
#include <chrono>
#include <cstdio>
#include <ctime>
#include <vector>
using namespace sp;
struct Lin { double t0, per_tok; int knee; };
static double lin(const void* c, int b) { auto* l = (const Lin*)c; return l->t0 + (b > l->knee ? (b - l->knee) * l->per_tok : 0); }
int main() {
    const int R = 256, G = 7;
    Rng rng = rng_seed(1);
    std::vector<float> conf(R * G); for (auto& c : conf) c = (float)(0.5 + 0.5 * rng_uniform(rng));
    std::vector<int> ml(R, G); std::vector<int> ell(R);
    for (int knee : {100000, 1024, 256}) {
        Lin l{0.02, 2e-5, knee};
        PolicyInput in; in.n = R; in.gamma = G; in.conf = conf.data(); in.conf_stale = conf.data(); in.max_len = ml.data(); in.token_budget = 8192;
        in.step_time = StepTime{lin, &l};
        for (int es : {1, 0}) {
            double best = 1e9; double sink = 0;
            for (int rep = 0; rep < 7; rep++) {
                int iters = 2000;
                timespec t0, t1; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
                for (int i = 0; i < iters; i++) { conf[i % (R*G)] = (float)(0.5 + 0.5 * rng_uniform(rng)); sink += dspark_schedule(in, es, ell.data()); }
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
                best = std::min(best, ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) * 1e-3) / iters);
            }
            long B = 0; for (int x : ell) B += 1 + x;
            printf("knee %6d early %d: %.2f us/call  B=%ld\n", knee, es, best, B);
        }
    }
}
