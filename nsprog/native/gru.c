/* The recurrent loops of a single-layer GRU (PyTorch's gate order r, z, n), forward and
 * backward, for float32 arrays in time-major layout. Everything that is not recurrent (input
 * projections, weight gradients) is done by the caller with BLAS matrix products.
 *
 * Built on first use by nsprog/native/__init__.py with the system C compiler; when no
 * compiler is available nsprog falls back to torch.nn.GRU, which computes the same numbers.
 *
 * Shapes (all row-major, contiguous):
 *   gi   [T][B][3H]  input projections W_ih x_t + b_ih, with b_hh's r and z parts added
 *   whhT [H][3H]     W_hh transposed (forward), whh [3H][H] (backward)
 *   bhn  [H]         b_hh's n part (it sits inside r * (.))
 *   hs   [T+1][B][H] hidden states, hs[0] = h0
 *   r, z, n, ghn [T][B][H]  gates and W_hn h_{t-1} + b_hn, saved for the backward pass
 *   nb, blk [nb+1]  the hidden units fall into nb blocks [blk[i], blk[i+1]); W_hh is
 *                   block-diagonal over them (several independent GRUs reading the same
 *                   input, as the program search stacks them), and only the blocks are
 *                   read, so k GRUs of h units cost k h^2, not (k h)^2. One dense GRU:
 *                   nb = 1, blk = {0, H}.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* glibc's vector math library (libmvec) has SIMD versions of expf and tanhf; glibc's headers
 * declare them only under -ffast-math, which would also make GCC link a start-up routine that
 * flushes subnormals to zero for the whole process. Declaring them here lets the gate loops
 * vectorise with -fno-math-errno alone. */
#if defined(__GLIBC__) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#if __GLIBC_PREREQ(2, 22)
__attribute__((simd("notinbranch"))) float expf(float);
#endif
#if __GLIBC_PREREQ(2, 35)
__attribute__((simd("notinbranch"))) float tanhf(float);
#endif
#endif

/* One step's gates for one sequence from its input projections g_in [3H] and recurrent
 * products gh [3H]; simple element-wise loops, so that the compiler vectorises expf / tanhf
 * (libmvec). */
static inline void forward_gates(int H, const float *restrict g_in, const float *restrict gh,
                                 const float *restrict bhn, const float *restrict h, float *restrict hn,
                                 float *restrict ro, float *restrict zo, float *restrict no, float *restrict go) {
    for (int j = 0; j < H; ++j) ro[j] = 1.0f / (1.0f + expf(-(g_in[j] + gh[j])));
    for (int j = 0; j < H; ++j) zo[j] = 1.0f / (1.0f + expf(-(g_in[H + j] + gh[H + j])));
    for (int j = 0; j < H; ++j) go[j] = gh[2 * H + j] + bhn[j];
    for (int j = 0; j < H; ++j) no[j] = tanhf(g_in[2 * H + j] + ro[j] * go[j]);
    for (int j = 0; j < H; ++j) hn[j] = no[j] + zo[j] * (h[j] - no[j]);
}

/* One step's gate gradients for one sequence: dg [3H] (r, z, n pre-activations), dgn [H]
 * (W_hn h + b_hn), and dh [H] = the part of dL/dh_{t-1} that bypasses W_hh (may alias c). */
static inline void backward_gates(int H, const float *restrict d_out, const float *c, const float *restrict r,
                                  const float *restrict z, const float *restrict n, const float *restrict ghn,
                                  const float *restrict hp, float *restrict dg, float *restrict dgn, float *dh) {
    for (int j = 0; j < H; ++j) {
        float d = d_out[j] + c[j];
        float rj = r[j], zj = z[j], nj = n[j];
        float dan = d * (1.0f - zj) * (1.0f - nj * nj);
        float daz = d * (hp[j] - nj) * zj * (1.0f - zj);
        dg[j] = dan * ghn[j] * rj * (1.0f - rj);
        dg[H + j] = daz;
        dg[2 * H + j] = dan;
        dgn[j] = dan * rj;
        dh[j] = d * zj;
    }
}

/* The diagonal blocks of W_hh packed contiguously, block after block, as [k][gate * hq + i]
 * = W_hh[gate * H + lo + i][lo + k] (rows_first = 0) or as [gate * hq + i][k] (rows_first = 1);
 * w is W_hh with element (row, col) at w[col * sk + row * sr] (W_hh^T: sk = 3H, sr = 1;
 * W_hh: sk = 1, sr = H). */
static float *pack_blocks(int H, int nb, const int *restrict blk, const float *restrict w, size_t sk, size_t sr,
                          int rows_first) {
    float *packed = (float *)malloc(sizeof(float) * 3 * (size_t)H * H), *p = packed;
    for (int q = 0; q < nb; ++q) {
        const int lo = blk[q], hq = blk[q + 1] - lo;
        for (int k = 0; k < hq; ++k)
            for (int gate = 0; gate < 3; ++gate)
                for (int i = 0; i < hq; ++i) {
                    const size_t at = rows_first ? (size_t)(gate * hq + i) * hq + k : (size_t)k * 3 * hq + gate * hq + i;
                    p[at] = w[(size_t)(lo + k) * sk + (size_t)(gate * H + lo + i) * sr];
                }
        p += 3 * (size_t)hq * hq;
    }
    return packed;
}

void gru_forward(int T, int B, int H, int nb, const int *restrict blk, const float *restrict gi,
                 const float *restrict whhT, const float *restrict bhn, float *restrict hs, float *restrict r,
                 float *restrict z, float *restrict n, float *restrict ghn) {
    const int G = 3 * H;
    float *gh = (float *)malloc(sizeof(float) * G);
    /* blocks: each block's recurrent weights packed contiguously, [k][gate * hq + i] */
    float *packed = NULL, *ghq = NULL;
    if (nb > 1) {
        packed = pack_blocks(H, nb, blk, whhT, G, 1, 0);
        ghq = (float *)malloc(sizeof(float) * G);
    }
    for (int t = 0; t < T; ++t) {
        for (int b = 0; b < B; ++b) {
            const float *restrict h = hs + ((size_t)t * B + b) * H;
            float *restrict hn = hs + ((size_t)(t + 1) * B + b) * H;
            const float *restrict g_in = gi + ((size_t)t * B + b) * G;
            const size_t o = ((size_t)t * B + b) * H;
            float *restrict ro = r + o, *restrict zo = z + o, *restrict no = n + o, *restrict go = ghn + o;
            memset(gh, 0, sizeof(float) * G);
            if (nb == 1) {
                for (int k = 0; k < H; ++k) {
                    const float hk = h[k];
                    const float *restrict w = whhT + (size_t)k * G;
                    for (int g = 0; g < G; ++g) gh[g] += w[g] * hk;
                }
            } else {
                const float *restrict w = packed;
                for (int q = 0; q < nb; ++q) {
                    const int lo = blk[q], hq = blk[q + 1] - lo, g3 = 3 * hq;
                    memset(ghq, 0, sizeof(float) * g3);
                    for (int k = 0; k < hq; ++k, w += g3) {
                        const float hk = h[lo + k];
                        for (int g = 0; g < g3; ++g) ghq[g] += w[g] * hk;
                    }
                    for (int gate = 0; gate < 3; ++gate)
                        memcpy(gh + gate * H + lo, ghq + gate * hq, sizeof(float) * hq);
                }
            }
            forward_gates(H, g_in, gh, bhn, h, hn, ro, zo, no, go);
        }
    }
    free(gh);
    free(packed);
    free(ghq);
}

/* d_out [T][B][H]: gradient w.r.t. the outputs h_1..h_T; carry [B][H]: on entry the gradient
 * w.r.t. the final state, on exit the gradient w.r.t. h0.
 * d_gi [T][B][3H]: gradient w.r.t. the input pre-activations (r, z, n);
 * d_ghn [T][B][H]: gradient w.r.t. W_hn h_{t-1} + b_hn (the r and z parts equal d_gi's). */
void gru_backward(int T, int B, int H, int nb, const int *restrict blk, const float *restrict d_out,
                  const float *restrict whh,
                  const float *restrict hs, const float *restrict r, const float *restrict z,
                  const float *restrict n, const float *restrict ghn, float *restrict carry,
                  float *restrict d_gi, float *restrict d_ghn) {
    const int G = 3 * H;
    float *restrict dh = (float *)malloc(sizeof(float) * H);
    /* blocks: each block's recurrent weights packed contiguously and transposed, [j][gate * hq + i] */
    float *packed = NULL, *vq = NULL;
    if (nb > 1) {
        packed = pack_blocks(H, nb, blk, whh, 1, H, 0);
        vq = (float *)malloc(sizeof(float) * G);
    }
    for (int t = T - 1; t >= 0; --t) {
        for (int b = 0; b < B; ++b) {
            size_t o = ((size_t)t * B + b) * H;
            const float *restrict hp = hs + o;  /* hs[t] = h_{t-1} of step t */
            float *restrict c = carry + (size_t)b * H;
            float *restrict dg = d_gi + ((size_t)t * B + b) * G;
            float *restrict dgn = d_ghn + o;
            backward_gates(H, d_out + o, c, r + o, z + o, n + o, ghn + o, hp, dg, dgn, dh);
            if (nb == 1) {
                for (int g = 0; g < 2 * H; ++g) {
                    const float v = dg[g];
                    const float *restrict w = whh + (size_t)g * H;
                    for (int j = 0; j < H; ++j) dh[j] += v * w[j];
                }
                for (int g = 0; g < H; ++g) {
                    const float v = dgn[g];
                    const float *restrict w = whh + (size_t)(2 * H + g) * H;
                    for (int j = 0; j < H; ++j) dh[j] += v * w[j];
                }
            } else {
                const float *restrict w = packed;
                for (int q = 0; q < nb; ++q) {
                    const int lo = blk[q], hq = blk[q + 1] - lo, g3 = 3 * hq;
                    memcpy(vq, dg + lo, sizeof(float) * hq);
                    memcpy(vq + hq, dg + H + lo, sizeof(float) * hq);
                    memcpy(vq + 2 * hq, dgn + lo, sizeof(float) * hq);
                    for (int j = 0; j < hq; ++j, w += g3) {
                        float acc = 0.0f;
                        for (int g = 0; g < g3; ++g) acc += vq[g] * w[g];
                        dh[lo + j] += acc;
                    }
                }
            }
            memcpy(c, dh, sizeof(float) * H);
        }
    }
    free(dh);
    free(packed);
    free(vq);
}

/* ---- batch-inner variants -------------------------------------------------------------------
 * Same arguments, same results. The recurrent products run over the batch in the innermost
 * loop (the hidden state is transposed to [H][B] at each step), LANES batch columns at a time
 * in registers. That vectorises whatever the block size, where the row-wise kernels above
 * vectorise over 3 * block rows: much faster for small blocks (< 8 units: 1.2-3x), slower for
 * blocks of 8 or more (nsprog/gru_kernel.py picks per call). */

#define LANES 16

/* out[o][b] = sum_i M[o][i] * in[i][b] for rows of length B (contiguous), LANES columns at a time */
static void rows_product(int B, int nout, int nin, const float *restrict M, const float *restrict in,
                         float *restrict out) {
    int b0 = 0;
    for (; b0 + LANES <= B; b0 += LANES)
        for (int o = 0; o < nout; ++o) {
            float acc[LANES] = {0};
            const float *restrict m = M + (size_t)o * nin;
            for (int i = 0; i < nin; ++i) {
                const float w = m[i];
                const float *restrict x = in + (size_t)i * B + b0;
                for (int l = 0; l < LANES; ++l) acc[l] += w * x[l];
            }
            memcpy(out + (size_t)o * B + b0, acc, sizeof acc);
        }
    for (; b0 < B; ++b0)
        for (int o = 0; o < nout; ++o) {
            float acc = 0.0f;
            for (int i = 0; i < nin; ++i) acc += M[(size_t)o * nin + i] * in[(size_t)i * B + b0];
            out[(size_t)o * B + b0] = acc;
        }
}

/* block-major row R = 3 lo + gate * hq + i of a block [lo, lo + hq) <-> gate-major column gate * H + lo + i */
static int *block_columns(int H, int nb, const int *restrict blk) {
    int *col = (int *)malloc(sizeof(int) * 3 * (size_t)H), *c = col;
    for (int q = 0; q < nb; ++q)
        for (int gate = 0; gate < 3; ++gate)
            for (int i = blk[q]; i < blk[q + 1]; ++i) *c++ = gate * H + i;
    return col;
}

void gru_forward_bi(int T, int B, int H, int nb, const int *restrict blk, const float *restrict gi,
                    const float *restrict whhT, const float *restrict bhn, float *restrict hs, float *restrict r,
                    float *restrict z, float *restrict n, float *restrict ghn) {
    const int G = 3 * H;
    int *col = block_columns(H, nb, blk);
    float *M = pack_blocks(H, nb, blk, whhT, G, 1, 1), *m;  /* per block [3 hq][hq]: maps h to gh */
    float *restrict hT = (float *)malloc(sizeof(float) * (size_t)H * B);
    float *restrict ghT = (float *)malloc(sizeof(float) * (size_t)G * B);
    float *restrict gh = (float *)malloc(sizeof(float) * (size_t)G * B);
    for (int t = 0; t < T; ++t) {
        const float *restrict h = hs + (size_t)t * B * H;
        for (int b = 0; b < B; ++b)
            for (int k = 0; k < H; ++k) hT[(size_t)k * B + b] = h[(size_t)b * H + k];
        m = M;
        for (int q = 0; q < nb; ++q) {
            const int lo = blk[q], hq = blk[q + 1] - lo;
            rows_product(B, 3 * hq, hq, m, hT + (size_t)lo * B, ghT + (size_t)3 * lo * B);
            m += 3 * (size_t)hq * hq;
        }
        for (int R = 0; R < G; ++R) {
            const float *restrict src = ghT + (size_t)R * B;
            float *restrict dst = gh + col[R];
            for (int b = 0; b < B; ++b) dst[(size_t)b * G] = src[b];
        }
        for (int b = 0; b < B; ++b) {
            const float *restrict hb = h + (size_t)b * H;
            float *restrict hn = hs + ((size_t)(t + 1) * B + b) * H;
            const float *restrict g_in = gi + ((size_t)t * B + b) * G;
            const float *restrict ghb = gh + (size_t)b * G;
            const size_t o = ((size_t)t * B + b) * H;
            float *restrict ro = r + o, *restrict zo = z + o, *restrict no = n + o, *restrict go = ghn + o;
            forward_gates(H, g_in, ghb, bhn, hb, hn, ro, zo, no, go);
        }
    }
    free(col); free(M); free(hT); free(ghT); free(gh);
}

void gru_backward_bi(int T, int B, int H, int nb, const int *restrict blk, const float *restrict d_out,
                     const float *restrict whh, const float *restrict hs, const float *restrict r,
                     const float *restrict z, const float *restrict n, const float *restrict ghn,
                     float *restrict carry, float *restrict d_gi, float *restrict d_ghn) {
    const int G = 3 * H;
    int *col = block_columns(H, nb, blk);
    float *M = pack_blocks(H, nb, blk, whh, 1, H, 0), *m;  /* per block [hq][3 hq]: maps gate gradients to dh */
    float *restrict vT = (float *)malloc(sizeof(float) * (size_t)G * B);
    float *restrict dhT = (float *)malloc(sizeof(float) * (size_t)H * B);
    for (int t = T - 1; t >= 0; --t) {
        for (int b = 0; b < B; ++b) {
            const size_t o = ((size_t)t * B + b) * H;
            const float *restrict hp = hs + o;
            float *restrict c = carry + (size_t)b * H;
            float *restrict dg = d_gi + ((size_t)t * B + b) * G;
            float *restrict dgn = d_ghn + o;
            backward_gates(H, d_out + o, c, r + o, z + o, n + o, ghn + o, hp, dg, dgn, c);
        }
        const float *restrict dg_t = d_gi + (size_t)t * B * G;
        const float *restrict dgn_t = d_ghn + (size_t)t * B * H;
        for (int R = 0; R < G; ++R) {
            const int cc = col[R];
            float *restrict dst = vT + (size_t)R * B;
            if (cc < 2 * H)
                for (int b = 0; b < B; ++b) dst[b] = dg_t[(size_t)b * G + cc];
            else
                for (int b = 0; b < B; ++b) dst[b] = dgn_t[(size_t)b * H + cc - 2 * H];
        }
        m = M;
        for (int q = 0; q < nb; ++q) {
            const int lo = blk[q], hq = blk[q + 1] - lo;
            rows_product(B, hq, 3 * hq, m, vT + (size_t)3 * lo * B, dhT + (size_t)lo * B);
            m += 3 * (size_t)hq * hq;
        }
        for (int b = 0; b < B; ++b)
            for (int k = 0; k < H; ++k) carry[(size_t)b * H + k] += dhT[(size_t)k * B + b];
    }
    free(col); free(M); free(vT); free(dhT);
}
