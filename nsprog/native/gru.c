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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

void gru_forward(int T, int B, int H, const float *restrict gi, const float *restrict whhT,
                 const float *restrict bhn, float *restrict hs, float *restrict r, float *restrict z,
                 float *restrict n, float *restrict ghn) {
    const int G = 3 * H;
    float *gh = (float *)malloc(sizeof(float) * G);
    for (int t = 0; t < T; ++t) {
        for (int b = 0; b < B; ++b) {
            const float *restrict h = hs + ((size_t)t * B + b) * H;
            float *restrict hn = hs + ((size_t)(t + 1) * B + b) * H;
            const float *restrict g_in = gi + ((size_t)t * B + b) * G;
            const size_t o = ((size_t)t * B + b) * H;
            float *restrict ro = r + o, *restrict zo = z + o, *restrict no = n + o, *restrict go = ghn + o;
            memset(gh, 0, sizeof(float) * G);
            for (int k = 0; k < H; ++k) {
                const float hk = h[k];
                const float *restrict w = whhT + (size_t)k * G;
                for (int g = 0; g < G; ++g) gh[g] += w[g] * hk;
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
}

/* d_out [T][B][H]: gradient w.r.t. the outputs h_1..h_T; carry [B][H]: on entry the gradient
 * w.r.t. the final state, on exit the gradient w.r.t. h0.
 * d_gi [T][B][3H]: gradient w.r.t. the input pre-activations (r, z, n);
 * d_ghn [T][B][H]: gradient w.r.t. W_hn h_{t-1} + b_hn (the r and z parts equal d_gi's). */
void gru_backward(int T, int B, int H, const float *restrict d_out, const float *restrict whh,
                  const float *restrict hs, const float *restrict r, const float *restrict z,
                  const float *restrict n, const float *restrict ghn, float *restrict carry,
                  float *restrict d_gi, float *restrict d_ghn) {
    const int G = 3 * H;
    float *restrict dh = (float *)malloc(sizeof(float) * H);
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
            memcpy(c, dh, sizeof(float) * H);
        }
    }
    free(dh);
}
