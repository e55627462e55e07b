package dev.expo.inference.engine;

import dev.expo.modeling.Decoder;
import dev.expo.modeling.lora.LoraAdapter;
import dev.expo.modeling.sampling.LogitsProcessors;
import dev.expo.modeling.sampling.SamplingParams;
import dev.expo.modeling.sampling.TokenSampler;
import dev.expo.modeling.tokenizer.StreamingDetokenizer;
import dev.expo.modeling.tokenizer.TextTokenizer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * One generation request inside the scheduler: its prompt rows (until prefilled, possibly over several steps), its
 * own sampler, detokenizer and stop strings, its adapters with their scales, and what it has produced. Each call to
 * {@link #step} takes the logits of its next position and reports whether it has finished.
 */
final class Sequence {

    private static final System.Logger LOG = System.getLogger(Sequence.class.getName());

    final String model;
    /** What its cache's positions depend on besides the tokens: only caches under an equal key are shared. */
    final PrefixKey prefixKey;
    final SamplingParams params;
    final Map<LoraAdapter, Float> adapters;
    final AtomicBoolean cancelled = new AtomicBoolean();
    private final GenerationListener listener;
    private final InferenceMetrics metrics;
    private final long start;
    private final int promptIds;
    private final int promptPositions;
    private final int maxNew;
    private final int[] context;
    private final TokenSampler sampler;
    private final StreamingDetokenizer detokenizer;
    private final TextTokenizer tokenizer;
    private final StopStrings stops;
    private final Set<Integer> stopIds;
    private float[][] prompt;       // its input rows, until every one is handed to a prefill step
    private int prefilled;          // prompt positions in its cache or handed out: reused, then computed
    private Reuse reuse;            // from admission to the prefill
    private int cachedPositions;    // prompt positions taken from a parked cache instead of computed
    private int length;
    private int generated;
    private int lastToken = -1;
    private long lastTokenTime;
    private Duration timeToFirstToken;
    private boolean finished;
    int slot = -1;
    long kvBytes;   // reserved in the KV cache budget while in a slot

    /**
     * What the model brings to a sequence.
     *
     * @param name    the model's name, as metrics and logs report it
     * @param context the most positions a sequence may have (prompt and output)
     * @param eos     token ids that end a sequence unless it ignores them
     */
    record Model(String name, int context, TextTokenizer tokenizer, Set<Integer> eos) {
    }

    /**
     * What a request asks for.
     *
     * @param rows      the prompt's input rows, one per position (an image's embeddings included)
     * @param ids       the prompt's token ids (an image's positions excluded)
     * @param prefixKey what, besides the tokens, a cache of this prompt depends on
     * @param adapters  LoRA adapters with their scales (may be empty)
     */
    record Request(float[][] rows, long[] ids, PrefixKey prefixKey, Map<LoraAdapter, Float> adapters,
                   SamplingParams params) {
    }

    /** {@code start}: when the request arrived ({@link System#nanoTime}), for time to first token. */
    Sequence(Model model, Request request, GenerationListener listener, InferenceMetrics metrics, long start) {
        this.model = model.name();
        this.prefixKey = request.prefixKey();
        this.prompt = request.rows();
        this.promptIds = request.ids().length;
        this.promptPositions = prompt.length;
        this.params = request.params();
        this.adapters = request.adapters();
        this.listener = shielded(listener, cancelled, this.model);
        this.metrics = metrics;
        this.start = start;
        this.maxNew = Math.min(params.maxNewTokens(), model.context() - prompt.length);
        long[] ids = request.ids();
        this.context = new int[ids.length + Math.max(0, maxNew)];
        for (int i = 0; i < ids.length; i++) {
            this.context[i] = (int) ids[i];
        }
        this.length = ids.length;
        this.sampler = new TokenSampler(params);
        this.detokenizer = new StreamingDetokenizer(model.tokenizer(), true);
        this.tokenizer = model.tokenizer();
        this.stops = new StopStrings(params.stop());
        this.stopIds = new HashSet<>(params.stopTokenIds());
        if (!params.ignoreEos()) {
            stopIds.addAll(model.eos());
        }
    }

    /** Whether prompt rows are left to compute (its first token is not sampled yet). */
    boolean prefilling() {
        return prompt != null;
    }

    /**
     * Its next prompt rows to compute, at most {@code max}, in position order; the prompt is dropped with the last
     * of them, after which {@link #prefilling} is false and the last row's logits give the first token.
     */
    float[][] nextPromptRows(int max) {
        int to = prefilled + Math.min(max, promptPositions - prefilled);
        float[][] rows = Arrays.copyOfRange(prompt, prefilled, to);
        prefilled = to;
        if (to == promptPositions) {
            prompt = null;
        }
        return rows;
    }

    /**
     * A parked cache the sequence starts from: its first {@code keep} positions, taken over whole (the slot owns the
     * arrays from then on) or copied.
     */
    record Reuse(Decoder.Detached kv, int keep, boolean takeOver) {
    }

    /** Set at admission (null: none): the prefill then computes only the positions after {@code keep}. */
    void startFrom(Reuse reuse) {
        this.reuse = reuse;
        this.cachedPositions = reuse == null ? 0 : reuse.keep();
        this.prefilled = cachedPositions;
    }

    /** The reuse decided at admission, handed over once for the prefill. */
    Reuse takeReuse() {
        Reuse taken = reuse;
        reuse = null;
        return taken;
    }

    int cachedPositions() {
        return cachedPositions;
    }

    /** The positions its cache holds at most: the prompt and every new token it may produce. */
    int maxPositions() {
        return promptPositions + Math.max(0, maxNew);
    }

    int promptPositions() {
        return promptPositions;
    }

    /**
     * What each of its first {@code count} positions holds, as a prefix cache compares them: -1 for an image row
     * (the image is in the key), then the prompt's token ids and the generated ones.
     */
    int[] positions(int count) {
        int imageRows = promptPositions - promptIds;
        int[] positions = new int[count];
        Arrays.fill(positions, 0, Math.min(count, imageRows), -1);
        System.arraycopy(context, 0, positions, Math.min(count, imageRows), Math.max(0, count - imageRows));
        return positions;
    }

    /** A token decoded alone, as OpenAI-style logprobs name tokens. */
    private String tokenText(int id) {
        return tokenizer.decode(new long[] {id}, false);
    }

    int lastToken() {
        return lastToken;
    }

    boolean finished() {
        return finished;
    }

    /**
     * Samples the next token from the logits of the last position and streams it; why the sequence is done, or null
     * while it goes on. The scheduler frees the slot before {@link #finish} tells the client, so a client that has
     * heard the end never sees its slot still taken.
     */
    Outputs.FinishReason step(float[] logits) {
        if (cancelled.get()) {
            return Outputs.FinishReason.CANCELLED;
        }
        float[] processed = logits.clone();
        LogitsProcessors.apply(processed, params, context, length, promptIds);
        int token = sampler.pick(processed);
        List<Outputs.GeneratedLogprobs> logprobs = List.of();
        if (params.logprobs() || params.topLogprobs() > 0) {
            float[] ls = LogitsProcessors.logSoftmax(logits);
            List<Outputs.TokenLogprob> top = new ArrayList<>();
            for (int[] index : LogitsProcessors.topIndices(ls, params.topLogprobs())) {
                top.add(new Outputs.TokenLogprob(index[0], ls[index[0]], tokenText(index[0])));
            }
            logprobs = List.of(new Outputs.GeneratedLogprobs(token, ls[token], tokenText(token), top));
        }
        context[length++] = token;
        generated++;
        lastToken = token;
        long now = System.nanoTime();
        if (timeToFirstToken == null) {
            timeToFirstToken = Duration.ofNanos(now - start);
            metrics.firstToken(model, timeToFirstToken);
        } else {
            metrics.token(model, Duration.ofNanos(now - lastTokenTime));
        }
        lastTokenTime = now;
        if (stopIds.contains(token)) {
            listener.onDelta(stops.flush(), new int[] {token}, logprobs);
            return Outputs.FinishReason.STOP;
        }
        StopStrings.Step step = stops.add(detokenizer.add(token));
        listener.onDelta(step.emit(), new int[] {token}, logprobs);
        if (step.stopped()) {
            return Outputs.FinishReason.STOP;
        }
        if (generated >= maxNew) {
            listener.onDelta(stops.add(detokenizer.flush()).emit() + stops.flush(), new int[0], List.of());
            return Outputs.FinishReason.LENGTH;
        }
        return null;
    }

    /**
     * The client's listener, shielded: an exception from it (its transport failing a write, say) cancels this sequence
     * alone. Unshielded it would fail the scheduler's iteration, and with it every sequence in the batch.
     */
    private static GenerationListener shielded(GenerationListener listener, AtomicBoolean cancelled, String model) {
        return new GenerationListener() {
            @Override
            public void onDelta(String text, int[] tokenIds, List<Outputs.GeneratedLogprobs> logprobs) {
                try {
                    listener.onDelta(text, tokenIds, logprobs);
                } catch (RuntimeException e) {
                    unreachable(e);
                }
            }

            @Override
            public void onFinished(Outputs.FinishReason reason, Outputs.Usage usage) {
                try {
                    listener.onFinished(reason, usage);
                } catch (RuntimeException e) {
                    unreachable(e);
                }
            }

            @Override
            public void onError(RuntimeException failure) {
                try {
                    listener.onError(failure);
                } catch (RuntimeException e) {
                    unreachable(e);
                }
            }

            private void unreachable(RuntimeException e) {
                if (!cancelled.getAndSet(true)) {
                    // With the stack: a bug of ours in the listener lands here too, and must be seen.
                    LOG.log(System.Logger.Level.WARNING,
                            "a generation on " + model + " could not reach its client; it stops as cancelled", e);
                }
            }
        };
    }

    void finish(Outputs.FinishReason reason) {
        if (finished) {
            return;
        }
        finished = true;
        metrics.finished(model, reason, generated);
        listener.onFinished(reason, new Outputs.Usage(promptPositions, cachedPositions, generated,
                timeToFirstToken == null ? Duration.ZERO : timeToFirstToken,
                Duration.ofNanos(System.nanoTime() - start)));
    }

    void fail(RuntimeException failure) {
        if (!finished) {
            finished = true;
            listener.onError(failure);
        }
    }
}
