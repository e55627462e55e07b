package dev.expo.modeling.llama;

import dev.expo.checkpoint.HfConfig;
import dev.expo.common.ExpoException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * rope_scaling against PyTorch: the float32 bits transformers' {@code modeling_rope_utils} formulas produce, evaluated
 * with torch 2.13 (head size 128, theta 500000, Llama 3.1's factors 8 / 1 / 4 / 8192; head size 64, theta 10000,
 * linear factor 2). And configs this runtime cannot compute are refused.
 */
class RopeScalingTest {

    private static final int[] DEFAULT_128 = {1065353216, 1062243009, 1059709382, 1057645444, 1054963644, 1052224381,
        1049992931, 1047774305, 1044812720, 1042400160, 1040434848, 1037480348, 1034871981, 1032747160, 1030233703,
        1027413636, 1025116360, 1023079743, 1020030793, 1017547065, 1015523779, 1012729580, 1010044269, 1007856767,
        1005516623, 1002613366, 1000248322, 998321717, 995260192, 992703196, 990620225, 987991056, 985226529, 982974499,
        980812778, 977823878, 975389069, 973405631, 970501249, 967868825, 965724408, 963265135, 960419060, 958100597,
        956122563, 953045493, 950538859, 948496911, 945754308, 943044231, 940836555, 938552192, 935622160, 933235305,
        931290932, 928278536, 925697959, 923595776, 921019725, 918229703, 915956903, 913852610, 910836144, 908378879};
    private static final int[] LLAMA3_128 = {1065353216, 1062243009, 1059709382, 1057645444, 1054963644, 1052224381,
        1049992931, 1047774305, 1044812720, 1042400160, 1040434848, 1037480348, 1034871981, 1032747160, 1030233703,
        1027413636, 1025116360, 1023079743, 1020030793, 1017547065, 1015523779, 1012729580, 1010044269, 1007856767,
        1005516623, 1002613366, 1000248322, 998321717, 995260192, 990772486, 984863005, 979408798, 973706706, 967045384,
        960179666, 952658054, 950223245, 948239807, 945335425, 942703001, 940558584, 938099311, 935253236, 932934773,
        930956739, 927879669, 925373035, 923331087, 920588484, 917878407, 915670731, 913386368, 910456336, 908069481,
        906125108, 903112712, 900532135, 898429952, 895853901, 893063879, 890791079, 888686786, 885670320, 883213055};
    private static final int[] DEFAULT_64 = {1065353216, 1061157137, 1058010522, 1054337179, 1050798235, 1047712803,
        1043732615, 1040747895, 1036831949, 1033475085, 1030116802, 1026341397, 1023510243, 1019364175, 1016180025,
        1012562930, 1008981770, 1005959600, 1001931932, 998911607, 995049016, 991652109, 988353832, 984533390,
        981668463, 977573004, 974350870, 970790693, 967166816, 964208661, 960132947, 957076594};
    private static final int[] LINEAR_64 = {1056964608, 1052768529, 1049621914, 1045948571, 1042409627, 1039324195,
        1035344007, 1032359287, 1028443341, 1025086477, 1021728194, 1017952789, 1015121635, 1010975567, 1007791417,
        1004174322, 1000593162, 997570992, 993543324, 990522999, 986660408, 983263501, 979965224, 976144782,
        973279855, 969184396, 965962262, 962402085, 958778208, 955820053, 951744339, 948687986};

    private static float[] floats(int[] bits) {
        float[] out = new float[bits.length];
        for (int i = 0; i < bits.length; i++) {
            out[i] = Float.intBitsToFloat(bits[i]);
        }
        return out;
    }

    private static int[] bits(float[] values) {
        return Arrays.stream(toDoubles(values)).mapToInt(v -> Float.floatToIntBits((float) v)).toArray();
    }

    private static double[] toDoubles(float[] values) {
        double[] out = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = values[i];
        }
        return out;
    }

    @Test
    void inverseFrequenciesMatchPyTorchBitForBit() {
        assertThat(bits(RopeScaling.defaultInverseFrequencies(500000.0, 128))).containsExactly(DEFAULT_128);
        assertThat(bits(RopeScaling.defaultInverseFrequencies(10000.0, 64))).containsExactly(DEFAULT_64);
        RopeScaling llama3 = new RopeScaling("llama3", 8f, 1f, 4f, 8192);
        assertThat(bits(llama3.apply(floats(DEFAULT_128)))).containsExactly(LLAMA3_128);
        RopeScaling linear = new RopeScaling("linear", 2f, 0f, 0f, 0);
        assertThat(bits(linear.apply(floats(DEFAULT_64)))).containsExactly(LINEAR_64);
        assertThat(bits(RopeScaling.NONE.apply(floats(DEFAULT_64)))).containsExactly(DEFAULT_64);
    }

    @Test
    void configsAreReadAndWhatCannotBeComputedIsRefused(@TempDir Path dir) throws IOException {
        assertThat(config(dir, "").ropeScaling()).isSameAs(RopeScaling.NONE);
        assertThat(config(dir, ", \"rope_scaling\": null").ropeScaling()).isSameAs(RopeScaling.NONE);
        assertThat(config(dir, ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, "
                + "\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}")
                .ropeScaling()).isEqualTo(new RopeScaling("llama3", 8f, 1f, 4f, 8192));
        assertThat(config(dir, ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2}").ropeScaling())
                .isEqualTo(new RopeScaling("linear", 2f, 0f, 0f, 0));
        assertThat(config(dir, ", \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2}").ropeScaling())
                .isSameAs(RopeScaling.NONE);
        refused(dir, ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}", ExpoException.Kind.FAILED_PRECONDITION,
                "rope_scaling type \"yarn\" is not supported");
        refused(dir, ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}", ExpoException.Kind.INVALID_ARGUMENT,
                "rope_scaling needs a positive low_freq_factor");
        refused(dir, ", \"hidden_act\": \"gelu\"", ExpoException.Kind.FAILED_PRECONDITION,
                "hidden_act \"gelu\" is not supported");
        refused(dir, ", \"attention_bias\": true", ExpoException.Kind.FAILED_PRECONDITION,
                "attention_bias is not supported");
        assertThat(config(dir, ", \"attention_bias\": false, \"hidden_act\": \"silu\"").hiddenSize()).isEqualTo(64);
    }

    private static LlamaConfig config(Path dir, String extra) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\", \"hidden_size\": 64, "
                + "\"num_attention_heads\": 4, \"intermediate_size\": 128, \"num_hidden_layers\": 2, "
                + "\"vocab_size\": 100" + extra + "}");
        return LlamaConfig.from(HfConfig.read(dir));
    }

    private static void refused(Path dir, String extra, ExpoException.Kind kind, String message) {
        assertThatThrownBy(() -> config(dir, extra)).isInstanceOf(ExpoException.class)
                .hasMessageContaining(message)
                .satisfies(e -> assertThat(((ExpoException) e).kind()).isEqualTo(kind));
    }
}
