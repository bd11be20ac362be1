package dev.backlogagent.export;

import com.sun.net.httpserver.Authenticator;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpPrincipal;
import java.io.FilterOutputStream;
import java.io.IOException;
import java.io.OutputStream;

/**
 * Hands the Prometheus endpoint's response to the JDK's HTTP server in 64 KiB slices. The exporter writes
 * the whole exposition in one call, and for a response without gzip the JDK's server copies each write
 * into a buffer of the write's size, kept for the connection: a second copy of a response that is 8 MB
 * with 500 busy listeners, and what ended the agent at the first uncompressed scrape. Installed as the
 * endpoint's "authenticator", the one hook the exporter offers that sees each exchange first; it lets
 * every request in.
 */
final class SlicedResponses extends Authenticator {
  static final int SLICE = 64 * 1024;
  private static final HttpPrincipal SCRAPER = new HttpPrincipal("scraper", "backlog-agent");

  @Override
  public Result authenticate(HttpExchange exchange) {
    exchange.setStreams(null, new Sliced(exchange.getResponseBody()));
    return new Success(SCRAPER);
  }

  private static final class Sliced extends FilterOutputStream {
    Sliced(OutputStream out) {
      super(out);
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      for (int done = 0; done < len; done += SLICE) {
        out.write(b, off + done, Math.min(SLICE, len - done));
      }
    }
  }
}
