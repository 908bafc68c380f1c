// drafter_open_cuda.cpp: drafter_open with the CUDA makers: DSpark and DFlash
// (drafter_dspark_cuda) and EAGLE-3 (drafter_eagle3_cuda) on the GPU, a draft
// model on its own CUDA backend; n-gram lookup stays on the host (it reads no
// hidden states and has no q).
#include "engine/cuda_model.h"
#include "engine/drafter_cuda.h"

namespace sp {

std::unique_ptr<Drafter> drafter_open_cuda(const std::string& spec, const ModelWeights& target,
                                           const DrafterOptions& o) {
    DrafterMakers make;
    make.dspark = [](const std::string& dir, const ModelWeights& t, int n_slots, int gamma) {
        return drafter_dspark_cuda(dir, t, n_slots, gamma);
    };
    make.eagle3 = [](const std::string& dir, const ModelWeights& t, int n_slots, int gamma) {
        return drafter_eagle3_cuda(dir, t, n_slots, gamma);
    };
    make.backend = [](ModelWeights w, int n_seqs) { return backend_cuda(w, n_seqs); };
    return drafter_open(spec, target, o, make);
}

}  // namespace sp
