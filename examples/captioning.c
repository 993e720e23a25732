/* cs231n assignment 3's captioning model, overfit on a tiny set as the course does: fixed random
 * "image features" [N,D] each with a caption of word ids; the features' projection is the RNN's (or
 * LSTM's) initial state, the caption's words go in through an embedding, a temporal affine layer
 * scores the vocabulary at every step, and the temporal softmax loss (mask: not <NULL>) trains it all.
 * It must reach a loss near 0 and decode every training caption back (exit 1 otherwise).
 *   build/examples/captioning [rnn|lstm] */
#include <stdio.h>
#include <string.h>

#include <nabla/nabla.h>

enum { N = 8, D = 20, W = 16, HID = 40, VOCAB = 12, T = 7, STEPS = 300 };
enum { NUL = 0, START = 1, END = 2 };   /* cs231n's special words */

typedef struct { nb_tensor *w_proj, *b_proj, *w_embed, *wx, *wh, *b, *w_vocab, *b_vocab; } captioner;

/* scores [N,T,VOCAB] of the words after each input word, from the features' initial state */
static nb_tensor *scores(const captioner *m, nb_tensor *features, nb_tensor *words_in, bool lstm)
{
    nb_tensor *h0 = nb_affine(features, m->w_proj, m->b_proj);            /* [N,HID] */
    nb_tensor *x = nb_embedding(m->w_embed, words_in);                    /* [N,T,W] */
    nb_tensor *h = (lstm ? nb_lstm : nb_rnn)(x, h0, m->wx, m->wh, m->b); /* [N,T,HID] */
    return nb_temporal_affine(h, m->w_vocab, m->b_vocab);
}

/* greedy decoding of image i: <START>, then the best word each step until <END> */
static void decode(const captioner *m, nb_tensor *features, int64_t i, bool lstm, int64_t *out)
{
    int64_t words[T] = { START };
    for (int64_t t = 0; t < T; t++) {
        nb_tensor *in = nb_from_data(NB_I64, NB_SHAPE(1, t + 1), words);
        nb_tensor *s = scores(m, nb_slice(features, 0, i, i + 1, 1), in, lstm);
        nb_tensor *best = nb_argmax(nb_slice(s, 1, t, t + 1, 1), 2, false);   /* [1,1] */
        out[t] = (int64_t)nb_item(best);
        if (t + 1 < T) words[t + 1] = out[t];
    }
}

int main(int argc, char **argv)
{
    const bool lstm = argc > 1 && !strcmp(argv[1], "lstm");
    nb_rng rng;
    nb_rng_seed(&rng, 231);
    /* the data: captions <START> w1 .. wk <END> <NULL>..., T+1 words each */
    nb_tensor *features = nb_persist(nb_randn(NB_F32, NB_SHAPE(N, D), &rng, 1));
    int64_t captions[N][T + 1] = { { 0 } };
    for (int i = 0; i < N; i++) {
        int k = 2 + (int)(nb_rng_next(&rng) % (T - 2));
        captions[i][0] = START;
        for (int j = 1; j <= k; j++) captions[i][j] = 3 + (int64_t)(nb_rng_next(&rng) % (VOCAB - 3));
        captions[i][k + 1] = END;
    }
    nb_tensor *all = nb_persist(nb_from_data(NB_I64, NB_SHAPE(N, T + 1), captions));
    nb_tensor *words_in = nb_persist(nb_slice(all, 1, 0, T, 1)), *words_out = nb_persist(nb_slice(all, 1, 1, T + 1, 1));
    nb_tensor *mask = nb_persist(nb_cast(nb_greater(nb_cast(words_out, NB_F32), nb_scalar(NB_F32, NUL)), NB_F32));

    const int64_t G = lstm ? 4 * HID : HID;
    captioner m = { nb_param(nb_randn(NB_F32, NB_SHAPE(D, HID), &rng, 0.1)), nb_param(nb_zeros(NB_F32, NB_SHAPE(HID))),
                    nb_param(nb_randn(NB_F32, NB_SHAPE(VOCAB, W), &rng, 0.1)),
                    nb_param(nb_randn(NB_F32, NB_SHAPE(W, G), &rng, 0.1)), nb_param(nb_randn(NB_F32, NB_SHAPE(HID, G), &rng, 0.1)),
                    nb_param(nb_zeros(NB_F32, NB_SHAPE(G))), nb_param(nb_randn(NB_F32, NB_SHAPE(HID, VOCAB), &rng, 0.1)),
                    nb_param(nb_zeros(NB_F32, NB_SHAPE(VOCAB))) };
    nb_tensor **params = (nb_tensor **)&m;   /* the struct is nothing but tensor pointers */
    const int n_params = (int)(sizeof m / sizeof(nb_tensor *));
    nb_optim_config cfg = nb_optim_defaults(NB_ADAM);
    cfg.lr = 1e-2;
    nb_optimizer *opt = nb_optimizer_new(cfg, n_params, params, NULL);
    if (!opt) return fprintf(stderr, "%s\n", nb_last_error()), 1;

    nb_scope *scope = nb_scope_new();
    nb_scope_push(scope);
    double last = 0;
    for (int step = 1; step <= STEPS; step++) {
        nb_optimizer_zero_grad(opt);
        nb_tensor *loss = nb_temporal_softmax_loss(scores(&m, features, words_in, lstm), words_out, mask);
        if (!loss || nb_backward(loss) || nb_optimizer_step(opt)) return fprintf(stderr, "%s\n", nb_last_error()), 1;
        last = nb_item(loss);
        if (step == 1 || step % 50 == 0) printf("%s step %3d  loss %.5f\n", lstm ? "lstm" : "rnn", step, last);
        nb_scope_reset(scope);
    }
    int wrong = 0;
    for (int64_t i = 0; i < N; i++) {
        int64_t got[T];
        decode(&m, features, i, lstm, got);
        for (int t = 0; t < T && captions[i][t] != END; t++) wrong += got[t] != captions[i][t + 1];
        printf("image %lld: caption", (long long)i);
        for (int t = 0; t < T && got[t] != END; t++) printf(" %lld", (long long)got[t]);
        printf("  (expected");
        for (int t = 1; captions[i][t] != END; t++) printf(" %lld", (long long)captions[i][t]);
        printf(")\n");
        nb_scope_reset(scope);
    }
    nb_scope_pop();
    nb_scope_free(scope);
    nb_optimizer_free(opt);
    for (int i = 0; i < n_params; i++) nb_free(params[i]);
    nb_free(features), nb_free(all), nb_free(words_in), nb_free(words_out), nb_free(mask);
    nb_cleanup();
    printf("final loss %.5f, %d words decoded wrong\n", last, wrong);
    return last < 0.05 && wrong == 0 ? 0 : 1;
}
