// out = K(X, Z) V, fused (flash / KeOps style): the nx x nz kernel matrix never exists.
//
// One thread block owns TX rows of X and walks over one chunk of Z (blockIdx.y; all of Z when the
// launch has one chunk) in tiles of TZ rows. For each Z tile
// it computes the TX x TZ tile of inner products like a simple SGEMM (X and Z staged in shared
// memory TD features at a time, each of the 16 x 16 threads accumulating a 4 x 4 micro-tile in
// registers), applies kernel_value (kernel_math.hpp) to its micro-tile in registers, and reduces
// the tile against the matching rows of V at once. Per Z tile the sums run in V's type TV (the
// working type T, or double for a double V with float X: the float kernel values multiply V in
// double; 64 terms: 4 in a thread, then 16 threads by warp shuffles); across Z tiles they
// accumulate in double in shared memory. Chunk c writes its partial result to out + c * nx * k (the caller sums
// the chunks: a small nx then still fills the GPU); each row of a chunk's output is written by
// exactly one block, so no atomics are used and the result is deterministic.
#include <algorithm>
#include <climits>

#include "common.cuh"
#include "pyfeat/cuda_ops.hpp"
#include "pyfeat/kernel_math.hpp"

namespace pyfeat::cuda {
namespace {

using detail::ceil_div;
using detail::require;
using detail::require_nonnegative;
using detail::require_pointer;

constexpr int NT = 16;      // threads per side of the block: NT x NT = 256 threads
constexpr int TX = 64;      // rows of X per block
constexpr int TZ = 64;      // rows of Z per tile
constexpr int TD = 16;      // features staged in shared memory per step
constexpr int R = TX / NT;  // rows of the micro-tile of one thread
constexpr int C = TZ / NT;  // columns of the micro-tile of one thread
constexpr int KCHUNK = 32;  // columns of V per launch: the double accumulator is TX x KCHUNK
static_assert(TX == TZ, "the staging loop loads one X row and one Z row per index");
static_assert((TX * TD) % (NT * NT) == 0, "staging assumes whole rounds of the block");

// Thread (tx, ty) owns rows ty + NT*r of the X tile and rows tx + NT*c of the Z tile (strided, so
// that in the inner loop a warp reads 2 broadcast X values and 16 consecutive Z rows).
// Shared tiles are [row][feature] with one padding column: the 16 Z rows a warp reads in one step
// are 17 words apart, which falls on 16 different banks (float and double alike).
// Lanes 0-15 of a warp share one ty (the block is x-major), so the sum over tx of a row is a
// shuffle reduction within half a warp.
template <class T, class TV>
__global__ void __launch_bounds__(NT* NT)
    kernel_matvec_tiled(int code, T p0, T p1, T p2, const T* __restrict__ X, std::int64_t nx,
                        const T* __restrict__ Z, std::int64_t nz, std::int64_t d,
                        const T* __restrict__ sx, const T* __restrict__ sz,
                        const TV* __restrict__ V, std::int64_t k, std::int64_t c0, int kc,
                        std::int64_t zchunk, TV* __restrict__ out) {
  __shared__ T Xs[TX][TD + 1];
  __shared__ T Zs[TZ][TD + 1];
  extern __shared__ double acc[];  // TX x kc: out[x0 + row, c0 + col] so far, in double

  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * NT + tx;
  const std::int64_t x0 = std::int64_t(blockIdx.x) * TX;
  const std::int64_t zbegin = std::int64_t(blockIdx.y) * zchunk;
  const std::int64_t zend = zbegin + zchunk < nz ? zbegin + zchunk : nz;
  out += std::int64_t(blockIdx.y) * nx * k;

  for (int e = tid; e < TX * kc; e += NT * NT) acc[e] = 0.0;

  T sxr[R];  // squared norms of this thread's X rows (0 past the end: those rows are never written)
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const std::int64_t xi = x0 + ty + NT * r;
    sxr[r] = xi < nx ? sx[xi] : T(0);
  }

  for (std::int64_t z0 = zbegin; z0 < zend; z0 += TZ) {
    // 1. g = X[x0 : x0+TX] Z[z0 : z0+TZ]^T, this thread's 4 x 4 entries, in registers.
    T g[R][C];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int c = 0; c < C; ++c) g[r][c] = T(0);

    for (std::int64_t f0 = 0; f0 < d; f0 += TD) {
      // Stage features f0 .. f0+TD of both tiles; zeros past the end of a row or of the matrix
      // add nothing to the inner products.
      for (int e = tid; e < TX * TD; e += NT * NT) {
        const int row = e / TD, col = e % TD;
        const std::int64_t f = f0 + col, xi = x0 + row, zj = z0 + row;
        Xs[row][col] = (xi < nx && f < d) ? X[xi * d + f] : T(0);
        Zs[row][col] = (zj < zend && f < d) ? Z[zj * d + f] : T(0);
      }
      __syncthreads();
#pragma unroll
      for (int ff = 0; ff < TD; ++ff) {
        T xr[R], zc[C];
#pragma unroll
        for (int r = 0; r < R; ++r) xr[r] = Xs[ty + NT * r][ff];
#pragma unroll
        for (int c = 0; c < C; ++c) zc[c] = Zs[tx + NT * c][ff];
#pragma unroll
        for (int r = 0; r < R; ++r)
#pragma unroll
          for (int c = 0; c < C; ++c) g[r][c] += xr[r] * zc[c];
      }
      __syncthreads();  // before the next stage overwrites the tiles
    }

    // 2. g <- k(g, |x|^2, |z|^2) in place; 0 for Z rows past the end (k(0,..) need not be 0).
#pragma unroll
    for (int c = 0; c < C; ++c) {
      const std::int64_t zj = z0 + tx + NT * c;
      const bool in = zj < zend;
      const T szc = in ? sz[zj] : T(0);
#pragma unroll
      for (int r = 0; r < R; ++r)
        g[r][c] = in ? kernel_value<T>(code, g[r][c], sxr[r], szc, p0, p1, p2) : T(0);
    }

    // 3. acc[row, col] += sum_j g[row, j] V[z0 + j, c0 + col].
    for (int col = 0; col < kc; ++col) {
      TV vc[C];
#pragma unroll
      for (int c = 0; c < C; ++c) {
        const std::int64_t zj = z0 + tx + NT * c;
        vc[c] = zj < zend ? V[zj * k + c0 + col] : TV(0);
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        TV s = TV(0);
#pragma unroll
        for (int c = 0; c < C; ++c) s += TV(g[r][c]) * vc[c];
        // Sum over the 16 lanes tx = 0..15 of this half warp (xor offsets < 16 stay inside it).
#pragma unroll
        for (int off = NT / 2; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (tx == 0) acc[(ty + NT * r) * kc + col] += double(s);
      }
    }
  }

  __syncthreads();  // acc rows were written by the tx == 0 threads; all threads store them
  for (int e = tid; e < TX * kc; e += NT * NT) {
    const int row = e / kc, col = e % kc;
    const std::int64_t xi = x0 + row;
    if (xi < nx) out[xi * k + c0 + col] = TV(acc[e]);
  }
}

}  // namespace

template <class T, class TV>
void kernel_matvec(int code, double p0, double p1, double p2, const T* X, std::int64_t nx,
                   const T* Z, std::int64_t nz, std::int64_t d, const T* sx, const T* sz,
                   const TV* V, std::int64_t k, TV* out, std::int64_t splits, std::uintptr_t stream) {
  const char* op = "kernel_matvec";
  require(is_kernel_code(code), op, "unknown kernel code " + std::to_string(code));
  require_nonnegative(op, "nx", nx);
  require_nonnegative(op, "nz", nz);
  require_nonnegative(op, "d", d);
  require_nonnegative(op, "k", k);
  require(splits >= 1 && splits <= 65535, op, "splits must be in [1, 65535], got " + std::to_string(splits));
  require_pointer(op, "X", X, nx * d);
  require_pointer(op, "Z", Z, nz * d);
  require_pointer(op, "sx", sx, nx);
  require_pointer(op, "sz", sz, nz);
  require_pointer(op, "V", V, nz * k);
  require_pointer(op, "out", out, splits * nx * k);
  if (nx == 0 || k == 0) return;
  const std::int64_t blocks = ceil_div(nx, TX);
  require(blocks <= INT_MAX, op, "nx too large for one launch: " + std::to_string(nx));
  const std::int64_t zchunk = ceil_div(nz, splits);  // chunks past nz are empty: they write zeros

  const dim3 block(NT, NT);
  const dim3 grid(static_cast<unsigned>(blocks), static_cast<unsigned>(splits));
  for (std::int64_t c0 = 0; c0 < k; c0 += KCHUNK) {
    const int kc = int(std::min<std::int64_t>(KCHUNK, k - c0));
    const size_t smem = size_t(TX) * kc * sizeof(double);
    kernel_matvec_tiled<T, TV><<<grid, block, smem, detail::as_stream(stream)>>>(
        code, T(p0), T(p1), T(p2), X, nx, Z, nz, d, sx, sz, V, k, c0, kc, zchunk, out);
    CHECK_LAUNCH();
  }
}

template void kernel_matvec<float, float>(int, double, double, double, const float*, std::int64_t,
                                          const float*, std::int64_t, std::int64_t, const float*,
                                          const float*, const float*, std::int64_t, float*,
                                          std::int64_t, std::uintptr_t);
template void kernel_matvec<double, double>(int, double, double, double, const double*,
                                            std::int64_t, const double*, std::int64_t, std::int64_t,
                                            const double*, const double*, const double*,
                                            std::int64_t, double*, std::int64_t, std::uintptr_t);
template void kernel_matvec<float, double>(int, double, double, double, const float*, std::int64_t,
                                           const float*, std::int64_t, std::int64_t, const float*,
                                           const float*, const double*, std::int64_t, double*,
                                           std::int64_t, std::uintptr_t);

}  // namespace pyfeat::cuda
