package dev.expo.cli;

import dev.expo.api.v1.ExtrapolationServiceGrpc;
import dev.expo.api.v1.InferenceServiceGrpc;
import dev.expo.api.v1.TrainingServiceGrpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthGrpc;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * Asks the gateway's standard health service about itself and about each public service (which the gateway answers
 * from the backend serving it). Exit 0 only if every one is SERVING.
 */
@Command(name = "health", description = "Show whether the gateway and each backend service are SERVING.")
public class HealthCommand implements Callable<Integer> {

    /** What is checked: a display name and the health service name asked of the gateway. */
    static final Map<String, String> CHECKS = new LinkedHashMap<>();

    static {
        CHECKS.put("gateway", "");
        CHECKS.put("extrapolation-service", ExtrapolationServiceGrpc.SERVICE_NAME);
        CHECKS.put("training-service", TrainingServiceGrpc.SERVICE_NAME);
        CHECKS.put("inference-service", InferenceServiceGrpc.SERVICE_NAME);
    }

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "5",
            description = "Per-check deadline (default: ${DEFAULT-VALUE}).")
    double timeoutSeconds;

    @Override
    public Integer call() {
        ManagedChannel channel = GatewayOptions.open();
        List<Map<String, String>> results = new ArrayList<>();
        boolean allServing = true;
        try {
            for (Map.Entry<String, String> check : CHECKS.entrySet()) {
                String status;
                String detail = "";
                try {
                    status = HealthGrpc.newBlockingStub(channel)
                            .withDeadlineAfter((long) (timeoutSeconds * 1000), TimeUnit.MILLISECONDS)
                            .check(HealthCheckRequest.newBuilder().setService(check.getValue()).build())
                            .getStatus().name();
                } catch (StatusRuntimeException e) {
                    status = "UNREACHABLE";
                    detail = CliErrors.message(e);
                }
                allServing &= status.equals("SERVING");
                Map<String, String> row = new LinkedHashMap<>();
                row.put("name", check.getKey());
                row.put("status", status);
                if (!detail.isEmpty()) {
                    row.put("detail", detail);
                }
                results.add(row);
            }
        } finally {
            GatewayOptions.close(channel);
        }
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("gateway", GatewayOptions.address());
            out.put("all_serving", allServing);
            out.put("services", results);
            System.out.println(Json.of(out));
        } else {
            for (Map<String, String> row : results) {
                System.out.printf("%-22s %s%s%n", row.get("name"), row.get("status"),
                        row.containsKey("detail") ? "  (" + row.get("detail") + ")" : "");
            }
        }
        return allServing ? 0 : 1;
    }
}
