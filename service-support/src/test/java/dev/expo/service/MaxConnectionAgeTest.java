package dev.expo.service;

import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClient;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;
import io.vertx.ext.web.Router;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.assertj.core.api.Assertions.assertThat;

/** A connection past its age gets GOAWAY; the stream still open on it finishes; the next request gets a new one. */
class MaxConnectionAgeTest {

    private final Vertx vertx = Vertx.vertx();

    @AfterEach
    void close() throws Exception {
        vertx.close().toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
    }

    @Test
    void anAgedConnectionIsAskedToGoAwayAndItsOpenStreamFinishes() throws Exception {
        Router router = Router.router(vertx);
        router.route().order(Integer.MIN_VALUE).handler(MaxConnectionAge.handler(vertx, Duration.ofMillis(300),
                Duration.ofSeconds(5)));
        router.get("/slow").handler(ctx -> vertx.setTimer(1000, id -> ctx.response().end("slow")));
        router.get("/fast").handler(ctx -> ctx.response().end("fast"));
        AtomicInteger connections = new AtomicInteger();
        HttpServer server = vertx.createHttpServer(new HttpServerOptions().setHttp2ClearTextEnabled(true))
                .connectionHandler(c -> connections.incrementAndGet()).requestHandler(router);
        int port = server.listen(0, "127.0.0.1").toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS)
                .actualPort();

        HttpClient client = vertx.createHttpClient(new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false).setDefaultHost("127.0.0.1").setDefaultPort(port));
        CountDownLatch goAway = new CountDownLatch(1);
        client.connectionHandler(connection -> connection.goAwayHandler(frame -> goAway.countDown()));
        var slow = client.request(HttpMethod.GET, "/slow").compose(request -> request.send()
                .compose(response -> response.body().map(body -> response.statusCode() + " " + body)))
                .toCompletionStage().toCompletableFuture();

        assertThat(goAway.await(5, TimeUnit.SECONDS)).as("GOAWAY after the connection's age").isTrue();
        assertThat(slow.isDone()).as("the slow stream is still running when GOAWAY comes").isFalse();
        assertThat(slow.get(10, TimeUnit.SECONDS)).isEqualTo("200 slow");
        String fast = client.request(HttpMethod.GET, "/fast").compose(request -> request.send()
                .compose(response -> response.body().map(body -> response.statusCode() + " " + body)))
                .toCompletionStage().toCompletableFuture().get(10, TimeUnit.SECONDS);
        assertThat(fast).isEqualTo("200 fast");
        assertThat(connections.get()).as("a new connection after the aged one").isEqualTo(2);
    }
}
