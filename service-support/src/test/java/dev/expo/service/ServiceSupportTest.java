package dev.expo.service;

import dev.expo.common.ExpoException;
import io.grpc.Status;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.function.Function;
import java.util.stream.IntStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class ServiceSupportTest {

    @Test
    void everyErrorKindMapsToItsStatusWithItsMessage() {
        for (ExpoException.Kind kind : ExpoException.Kind.values()) {
            Status status = GrpcErrors.toStatus(new ExpoException(kind, "why: " + kind));
            assertThat(status.getCode().name()).isEqualTo(kind.name());
            assertThat(status.getDescription()).isEqualTo("why: " + kind);
        }
        assertThat(GrpcErrors.toStatus(new CompletionException(ExpoException.notFound("x"))).getCode())
                .isEqualTo(Status.Code.NOT_FOUND);
        assertThat(GrpcErrors.toStatus(Status.DEADLINE_EXCEEDED.asRuntimeException()).getCode())
                .isEqualTo(Status.Code.DEADLINE_EXCEEDED);
        Status bug = GrpcErrors.toStatus(new NullPointerException("oops"));
        assertThat(bug.getCode()).isEqualTo(Status.Code.INTERNAL);
        assertThat(bug.getDescription()).contains("NullPointerException").doesNotContain("\tat ");
    }

    @Test
    void grpcTimeoutHeadersReadAsTheProtocolSaysAndMalformedOnesAsNoDeadline() {
        assertThat(GrpcTimeout.nanos("40m")).hasValue(40_000_000L);
        assertThat(GrpcTimeout.nanos("3S")).hasValue(3_000_000_000L);
        assertThat(GrpcTimeout.nanos("2M")).hasValue(120_000_000_000L);
        assertThat(GrpcTimeout.nanos("1H")).hasValue(3_600_000_000_000L);
        assertThat(GrpcTimeout.nanos("250u")).hasValue(250_000L);
        assertThat(GrpcTimeout.nanos("99999999n")).hasValue(99_999_999L);
        assertThat(GrpcTimeout.nanos("99999999H")).hasValue(Long.MAX_VALUE);   // saturated
        for (String malformed : new String[] {null, "", "m", "12", "1x", "-5m", "123456789m", " 5m", "5 m"}) {
            assertThat(GrpcTimeout.nanos(malformed)).as(String.valueOf(malformed)).isEmpty();
        }
    }

    @Test
    void pagesWalkTheWholeListOnceInOrder() {
        List<String> items = IntStream.range(0, 250).mapToObj(i -> String.format("m%03d", i)).toList();
        List<String> seen = new ArrayList<>();
        String token = "";
        int pages = 0;
        do {
            Pages.Page<String> page = Pages.page(items, Function.identity(), 100, token);
            seen.addAll(page.items());
            token = page.nextPageToken();
            pages++;
        } while (!token.isEmpty());
        assertThat(seen).isEqualTo(items);
        assertThat(pages).isEqualTo(3);
        assertThat(Pages.page(items, Function.identity(), 0, "").items()).hasSize(Pages.DEFAULT_PAGE_SIZE);
        assertThat(Pages.page(items, Function.identity(), 5000, "").items()).hasSize(250);
        assertThatThrownBy(() -> Pages.page(items, Function.identity(), 10, "not-a-token"))
                .isInstanceOf(ExpoException.class).hasMessageContaining("page_token");
        assertThatThrownBy(() -> Pages.page(items, Function.identity(), -1, ""))
                .isInstanceOf(ExpoException.class).hasMessageContaining("page_size");
    }
}
