/* The recurrent loops of a single-layer GRU (PyTorch's gate order r, z, n), forward and
 * backward, for float32 arrays in time-major layout. Everything that is not recurrent (input
 * projections, weight gradients) is done by the caller with BLAS matrix products.
 *
 * Built on first use by nsprog/native/__init__.py with the system C compiler; when no
 * compiler is available nsprog falls back to NumPy loops that compute the same numbers.
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

/* The diagonal blocks of W_hh packed contiguously, block after block, as [k][gate * hq + i]
 * = W_hh[gate * H + lo + i][lo + k]; w is W_hh with element (row, col) at w[col * sk + row * sr]
 * (W_hh^T: sk = 3H, sr = 1; W_hh: sk = 1, sr = H). */
static float *pack_blocks(int H, int nb, const int *restrict blk, const float *restrict w, size_t sk, size_t sr) {
    float *packed = (float *)malloc(sizeof(float) * 3 * (size_t)H * H), *p = packed;
    for (int q = 0; q < nb; ++q) {
        const int lo = blk[q], hi = blk[q + 1];
        for (int k = lo; k < hi; ++k)
            for (int gate = 0; gate < 3; ++gate)
                for (int i = lo; i < hi; ++i) *p++ = w[(size_t)k * sk + (size_t)(gate * H + i) * sr];
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
        packed = pack_blocks(H, nb, blk, whhT, G, 1);
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
            /* simple element-wise loops, so that the compiler vectorises expf / tanhf (libmvec) */
            for (int j = 0; j < H; ++j) ro[j] = 1.0f / (1.0f + expf(-(g_in[j] + gh[j])));
            for (int j = 0; j < H; ++j) zo[j] = 1.0f / (1.0f + expf(-(g_in[H + j] + gh[H + j])));
            for (int j = 0; j < H; ++j) go[j] = gh[2 * H + j] + bhn[j];
            for (int j = 0; j < H; ++j) no[j] = tanhf(g_in[2 * H + j] + ro[j] * go[j]);
            for (int j = 0; j < H; ++j) hn[j] = no[j] + zo[j] * (h[j] - no[j]);
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
        packed = pack_blocks(H, nb, blk, whh, 1, H);
        vq = (float *)malloc(sizeof(float) * G);
    }
    for (int t = T - 1; t >= 0; --t) {
        for (int b = 0; b < B; ++b) {
            size_t o = ((size_t)t * B + b) * H;
            const float *restrict hp = hs + o;  /* hs[t] = h_{t-1} of step t */
            float *restrict c = carry + (size_t)b * H;
            float *restrict dg = d_gi + ((size_t)t * B + b) * G;
            float *restrict dgn = d_ghn + o;
            for (int j = 0; j < H; ++j) {
                float d = d_out[o + j] + c[j];
                float rj = r[o + j], zj = z[o + j], nj = n[o + j];
                float dan = d * (1.0f - zj) * (1.0f - nj * nj);
                float daz = d * (hp[j] - nj) * zj * (1.0f - zj);
                float dar = dan * ghn[o + j] * rj * (1.0f - rj);
                dg[j] = dar;
                dg[H + j] = daz;
                dg[2 * H + j] = dan;
                dgn[j] = dan * rj;
                dh[j] = d * zj;
            }
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
