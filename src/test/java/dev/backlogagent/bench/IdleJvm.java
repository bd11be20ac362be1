package dev.backlogagent.bench;

/** The footprint benchmark's baseline: a JVM with the launcher's flags that does nothing but wait. */
public final class IdleJvm {
  private IdleJvm() {}

  public static void main(String[] args) throws InterruptedException {
    System.out.println("idle");
    System.out.flush();
    Thread.sleep(Long.MAX_VALUE);
  }
}
