set -e
cd "$(dirname "$0")/.."
lscpu | grep -E "Model name|MHz" | head -3
for v in heap radix10 bucket; do
  g++ -std=c++20 -O2 -DNDEBUG -I. -DPOLICY_CPP="\"benchtmp_policy/policy_$v.cpp\"" benchtmp_policy/parts.cpp -o /tmp/parts_$v
done
for rep in 1 2; do for v in heap radix10 bucket; do echo "== $v"; /tmp/parts_$v; done; done
