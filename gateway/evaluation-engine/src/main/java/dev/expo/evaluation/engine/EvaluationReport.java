package dev.expo.evaluation.engine;

import dev.expo.evaluation.engine.stats.PairedComparison;

import java.util.List;
import java.util.Locale;

/**
 * A run's report: one self-contained HTML page (no script, no external file) with the summary table and a chart of
 * mean reward (with its 95% interval) and length-controlled win rate (with its interval) for each variant in the
 * run's order, an alpha sweep's grid left to right; the chart is also an SVG of its own.
 */
public final class EvaluationReport {

    private static final int WIDTH = 760;
    private static final int HEIGHT = 340;
    private static final int LEFT = 70;
    private static final int RIGHT = 70;
    private static final int TOP = 30;
    private static final int BOTTOM = 70;
    private static final String REWARD = "#1f77b4";
    private static final String LC = "#d62728";

    private EvaluationReport() {
    }

    public static String html(EvaluationSummary summary, String title) {
        StringBuilder html = new StringBuilder();
        html.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>")
                .append(escape(title)).append("</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;"
                        + "color:#222}table{border-collapse:collapse;font-size:14px}th,td{padding:4px 10px;"
                        + "border-bottom:1px solid #ddd;text-align:right}th:first-child,td:first-child{text-align:left}"
                        + "tr.best td{font-weight:bold}caption{text-align:left;margin-bottom:6px;color:#555}"
                        + "</style></head><body>\n<h1>").append(escape(title)).append("</h1>\n");
        html.append("<p>Best by mean reward: <b>").append(escape(summary.best().variant()))
                .append("</b>. Win rates are against <b>").append(escape(summary.referenceVariant()))
                .append("</b> on the same prompts (ties count half); intervals are 95% (reward: Student's t; win "
                        + "rates: paired bootstrap, ").append(summary.bootstrap().resamples())
                .append(" resamples, seed ").append(summary.bootstrap().seed()).append(").</p>\n");
        html.append(svg(summary)).append('\n');
        html.append("<table><caption>Per variant</caption><tr><th>variant</th><th>outputs</th><th>mean reward</th>"
                + "<th>95% CI</th><th>win rate</th><th>95% CI</th><th>± s.e.</th><th>LC win rate</th><th>95% CI</th>"
                + "<th>W/L/T</th><th>tokens</th><th>chars</th><th>at limit</th><th>repeating</th></tr>\n");
        for (VariantSummary v : summary.variants()) {
            PairedComparison c = v.againstReference();
            html.append(v == summary.best() ? "<tr class=\"best\">" : "<tr>")
                    .append(td(escape(v.variant()))).append(td(String.valueOf(v.outputs())))
                    .append(td(fixed(v.reward().mean(), 4)))
                    .append(td(range(v.reward().lower(), v.reward().upper(), 4, 1)));
            if (c == null) {
                html.append(td("")).append(td("")).append(td("")).append(td("")).append(td("")).append(td(""));
            } else {
                html.append(td(percent(c.winRate()))).append(td(range(c.winRateInterval().lower(),
                                c.winRateInterval().upper(), 1, 100)))
                        .append(td(percent(c.standardError())))
                        .append(td(percent(c.lengthControlled().winRate())))
                        .append(td(range(c.lengthControlledInterval().lower(), c.lengthControlledInterval().upper(),
                                1, 100)))
                        .append(td(c.wins() + "/" + c.losses() + "/" + c.ties()));
            }
            html.append(td(fixed(v.meanGeneratedTokens(), 1))).append(td(fixed(v.meanCharacters(), 0)))
                    .append(td(percent(v.lengthLimitShare()))).append(td(percent(v.repeatingShare())))
                    .append("</tr>\n");
        }
        html.append("</table>\n<p style=\"color:#555;font-size:13px\">LC win rate: AlpacaEval 2's length-controlled "
                + "win rate (length_controlled_minimal GLM on tanh of the standardized length difference, predicted "
                + "at zero difference). At limit: outputs that stopped at the token limit. Repeating: outputs more "
                + "than half of whose token 4-grams repeat.</p>\n</body></html>\n");
        return html.toString();
    }

    /** Mean reward (left axis, blue) and LC win rate (right axis 0-100%, red) per variant, with their intervals. */
    public static String svg(EvaluationSummary summary) {
        List<VariantSummary> variants = summary.variants();
        double low = Double.POSITIVE_INFINITY;
        double high = Double.NEGATIVE_INFINITY;
        for (VariantSummary v : variants) {
            for (double y : new double[] {v.reward().mean(), v.reward().lower(), v.reward().upper()}) {
                if (Double.isFinite(y)) {
                    low = Math.min(low, y);
                    high = Math.max(high, y);
                }
            }
        }
        if (!(high > low)) {
            low -= 1;
            high += 1;
        }
        double pad = (high - low) * 0.08;
        double rewardLow = low - pad;
        double rewardHigh = high + pad;
        int plotWidth = WIDTH - LEFT - RIGHT;
        int plotHeight = HEIGHT - TOP - BOTTOM;
        StringBuilder svg = new StringBuilder();
        svg.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(WIDTH).append("\" height=\"")
                .append(HEIGHT).append("\" viewBox=\"0 0 ").append(WIDTH).append(' ').append(HEIGHT)
                .append("\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        svg.append(line(LEFT, TOP + plotHeight, LEFT + plotWidth, TOP + plotHeight, "#888"));
        svg.append(line(LEFT, TOP, LEFT, TOP + plotHeight, REWARD));
        svg.append(line(LEFT + plotWidth, TOP, LEFT + plotWidth, TOP + plotHeight, LC));
        for (int tick = 0; tick <= 4; tick++) {
            double fraction = tick / 4.0;
            double y = TOP + plotHeight * (1 - fraction);
            svg.append(line(LEFT, y, LEFT + plotWidth, y, "#eee"));
            svg.append(text(LEFT - 6, y + 4, "end", REWARD, fixed(rewardLow + fraction * (rewardHigh - rewardLow), 3)));
            svg.append(text(LEFT + plotWidth + 6, y + 4, "start", LC, (int) Math.round(fraction * 100) + "%"));
        }
        svg.append(text(14, TOP + plotHeight / 2.0, "middle", REWARD, "mean reward", -90));
        svg.append(text(WIDTH - 14, TOP + plotHeight / 2.0, "middle", LC, "LC win rate", 90));
        int n = variants.size();
        double step = plotWidth / (double) n;
        StringBuilder rewardPath = new StringBuilder();
        StringBuilder lcPath = new StringBuilder();
        for (int i = 0; i < n; i++) {
            VariantSummary v = variants.get(i);
            double x = LEFT + step * (i + 0.5);
            svg.append(text(x, TOP + plotHeight + 18, "middle", "#333", escape(v.variant())));
            double y = scale(v.reward().mean(), rewardLow, rewardHigh, plotHeight);
            rewardPath.append(rewardPath.isEmpty() ? "M" : " L").append(fixed(x - 4, 1)).append(' ').append(fixed(y, 1));
            if (Double.isFinite(v.reward().lower())) {
                svg.append(line(x - 4, scale(v.reward().lower(), rewardLow, rewardHigh, plotHeight), x - 4,
                        scale(v.reward().upper(), rewardLow, rewardHigh, plotHeight), REWARD));
            }
            svg.append(circle(x - 4, y, REWARD));
            PairedComparison c = v.againstReference();
            if (c != null) {
                double lc = scale(c.lengthControlled().winRate(), 0, 1, plotHeight);
                lcPath.append(lcPath.isEmpty() ? "M" : " L").append(fixed(x + 4, 1)).append(' ').append(fixed(lc, 1));
                if (Double.isFinite(c.lengthControlledInterval().lower())) {
                    svg.append(line(x + 4, scale(c.lengthControlledInterval().lower(), 0, 1, plotHeight), x + 4,
                            scale(c.lengthControlledInterval().upper(), 0, 1, plotHeight), LC));
                }
                svg.append(circle(x + 4, lc, LC));
            }
        }
        svg.append("<path d=\"").append(rewardPath).append("\" fill=\"none\" stroke=\"").append(REWARD)
                .append("\" stroke-width=\"1.5\"/>\n");
        if (!lcPath.isEmpty()) {
            svg.append("<path d=\"").append(lcPath).append("\" fill=\"none\" stroke=\"").append(LC)
                    .append("\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"/>\n");
        }
        svg.append(text(LEFT, HEIGHT - 18, "start", REWARD, "● mean reward (95% CI)"));
        svg.append(text(LEFT + 200, HEIGHT - 18, "start", LC, "● LC win rate vs " + escape(summary.referenceVariant())
                + " (95% CI)"));
        svg.append("</svg>");
        return svg.toString();
    }

    private static double scale(double value, double low, double high, int plotHeight) {
        return TOP + plotHeight * (1 - (value - low) / (high - low));
    }

    private static String line(double x1, double y1, double x2, double y2, String color) {
        return "<line x1=\"" + fixed(x1, 1) + "\" y1=\"" + fixed(y1, 1) + "\" x2=\"" + fixed(x2, 1) + "\" y2=\""
                + fixed(y2, 1) + "\" stroke=\"" + color + "\"/>\n";
    }

    private static String circle(double x, double y, String color) {
        return "<circle cx=\"" + fixed(x, 1) + "\" cy=\"" + fixed(y, 1) + "\" r=\"3.5\" fill=\"" + color + "\"/>\n";
    }

    private static String text(double x, double y, String anchor, String color, String content) {
        return "<text x=\"" + fixed(x, 1) + "\" y=\"" + fixed(y, 1) + "\" text-anchor=\"" + anchor + "\" fill=\""
                + color + "\">" + content + "</text>\n";
    }

    private static String text(double x, double y, String anchor, String color, String content, int rotate) {
        return "<text x=\"" + fixed(x, 1) + "\" y=\"" + fixed(y, 1) + "\" text-anchor=\"" + anchor + "\" fill=\""
                + color + "\" transform=\"rotate(" + rotate + " " + fixed(x, 1) + " " + fixed(y, 1) + ")\">" + content
                + "</text>\n";
    }

    private static String td(String content) {
        return "<td>" + content + "</td>";
    }

    /** A number to {@code decimals} places, "n/a" when unknown (NaN). */
    public static String fixed(double value, int decimals) {
        return Double.isFinite(value) ? String.format(Locale.ROOT, "%." + decimals + "f", value) : "n/a";
    }

    /** A fraction as a percentage to one place, "n/a" when unknown. */
    public static String percent(double fraction) {
        return Double.isFinite(fraction) ? String.format(Locale.ROOT, "%.1f%%", fraction * 100) : "n/a";
    }

    private static String range(double lower, double upper, int decimals, double factor) {
        if (!Double.isFinite(lower) || !Double.isFinite(upper)) {
            return "n/a";
        }
        return "[" + fixed(lower * factor, decimals) + ", " + fixed(upper * factor, decimals) + "]";
    }

    static String escape(String text) {
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
