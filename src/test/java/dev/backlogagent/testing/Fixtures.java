package dev.backlogagent.testing;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Test resources as files, for programs (python3, bpftrace) that need a path. */
public final class Fixtures {
  private Fixtures() {}

  public static Path path(String resource) throws IOException {
    Path file = Path.of("target", "fixtures", resource);
    synchronized (Fixtures.class) {
      // Copied afresh each run: a stale copy from an earlier build would test old code.
      Files.createDirectories(file.getParent());
      try (InputStream in = Fixtures.class.getResourceAsStream("/fixtures/" + resource)) {
        if (in == null) {
          throw new IOException("no test resource fixtures/" + resource);
        }
        Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
      }
    }
    return file.toAbsolutePath();
  }

  public static String text(String resource) throws IOException {
    try (InputStream in = Fixtures.class.getResourceAsStream("/" + resource)) {
      if (in == null) {
        throw new IOException("no test resource " + resource);
      }
      return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
  }
}
