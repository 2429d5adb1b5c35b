package com.example.hello;

import com.example.greeting.Greeting;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

/**
 * A tiny HTTP app on $PORT: "/" greets, "/health" answers ok, "/memory" tells the JVM's heap limit,
 * "/jvm" its user and its options in order.
 */
public final class HelloApp {
    private HelloApp() {}

    public static void main(String[] args) throws IOException {
        int port = Integer.parseInt(System.getenv().getOrDefault("PORT", "8080"));
        String index = System.getenv().getOrDefault("CF_INSTANCE_INDEX", "0");
        HttpServer server = HttpServer.create(new InetSocketAddress(port), 64);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/", ex -> reply(ex, Greeting.hello("Java") + " (instance " + index + ", Java "
                + Runtime.version().feature() + ")\n"));
        server.createContext("/health", ex -> reply(ex, "ok\n"));
        server.createContext("/memory", ex -> reply(ex, "maxMemory " + Runtime.getRuntime().maxMemory() + "\n"));
        server.createContext("/jvm", ex -> reply(ex, "user " + System.getProperty("user.name") + "\n"
                + String.join("\n", ManagementFactory.getRuntimeMXBean().getInputArguments()) + "\n"));
        server.start();
        System.out.println("java-hello listening on " + port + ", heap limit "
                + Runtime.getRuntime().maxMemory() / (1024 * 1024) + "M");
    }

    private static void reply(HttpExchange ex, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "text/plain; charset=utf-8");
        ex.sendResponseHeaders(200, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }
}
