package dev.backlogagent.decode;

import dev.backlogagent.decode.AddressFamily;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.backlogagent.decode.ListenerKey;
import dev.backlogagent.decode.TraceEvent.Counted;
import dev.backlogagent.testing.Fixtures;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The decoder on bpftrace output recorded on this kernel (src/test/resources/bpf/recorded/README.md). */
class TraceEventDecoderTest {
  private final BpftraceJsonReader reader = new BpftraceJsonReader();
  private final TraceEventDecoder decoder = new TraceEventDecoder();

  /** Decodes a recorded file; every non-empty line must decode. */
  private List<TraceEvent> decode(String recording) throws Exception {
    List<TraceEvent> events = new ArrayList<>();
    for (String line : Fixtures.text("bpf/recorded/" + recording).split("\n")) {
      if (!line.isBlank()) {
        events.addAll(decoder.decode(reader.read(line)));
      }
    }
    return events;
  }

  private static long sum(List<TraceEvent> events, Counted what, long netns) {
    return events.stream().filter(e -> e instanceof TraceEvent.ListenerCount c && c.what() == what && c.key().netns() == netns)
        .mapToLong(e -> ((TraceEvent.ListenerCount) e).value()).sum();
  }

  @Test
  void listenInANamespaceWithSomaxconn64Gives1024Requested64Granted() throws Exception {
    assertThat(decode("listen-somaxconn-truncation.jsonl")).filteredOn(e -> e instanceof TraceEvent.ListenCall)
        .containsExactlyInAnyOrder(
            new TraceEvent.ListenCall(new ListenerKey(4026532177L, AddressFamily.IPV4, "127.0.0.1", 8080), 608, "python3", 1024, 64),
            new TraceEvent.ListenCall(new ListenerKey(4026532177L, AddressFamily.IPV6, "::", 8081), 609, "python3", 1024, 64));
  }

  @Test
  void anAcceptQueueOverflowShowsFiveHandshakesAndAPeakAtTheBacklog() throws Exception {
    List<TraceEvent> events = decode("handshakes-accept-overflow.jsonl");
    ListenerKey key = new ListenerKey(4026532177L, AddressFamily.IPV4, "127.0.0.1", 8080);
    assertThat(sum(events, Counted.HANDSHAKES, key.netns())).isEqualTo(5);
    assertThat(events).contains(new TraceEvent.ListenerCount(Counted.QUEUE_PEAK, key, null, 4));
    assertThat(events).filteredOn(e -> e instanceof TraceEvent.ListenerHistogram).singleElement()
        .satisfies(h -> assertThat(((TraceEvent.ListenerHistogram) h).buckets())
            .extracting(BpftraceRecord.Bucket::count).containsExactly(1L, 1L, 2L, 1L));
  }

  @Test
  void theHandshakesAreTheDepthHistogramsCountsAndItsLowestBucketsGiveThePeakTheProgramLeavesOut() throws Exception {
    ListenerKey key = new ListenerKey(4026532177L, AddressFamily.IPV4, "127.0.0.1", 8080);
    // Every depth 0 or 1: handshakes.bt prints no @queue_peak; the highest bucket, {1,1}, is the peak.
    List<TraceEvent> shallow = decoder.decode(reader.read("{\"type\": \"hist\", \"data\": {\"@queue_depth\": "
        + "{\"4026532177,2,127.0.0.1,8080\": [{\"min\": 0, \"max\": 0, \"count\": 7804}, {\"min\": 1, \"max\": 1, \"count\": 241}]}}}"));
    assertThat(shallow).contains(new TraceEvent.ListenerCount(Counted.HANDSHAKES, key, null, 8045),
        new TraceEvent.ListenerCount(Counted.QUEUE_PEAK, key, null, 1));
    // Deeper: the bucket's low end is only a floor (2 of 2-3); the program's @queue_peak says 3.
    List<TraceEvent> deep = decoder.decode(reader.read("{\"type\": \"hist\", \"data\": {\"@queue_depth\": "
        + "{\"4026532177,2,127.0.0.1,8080\": [{\"min\": 0, \"max\": 0, \"count\": 1}, {\"min\": 1, \"max\": 1, \"count\": 0}, {\"min\": 2, \"max\": 3, \"count\": 2}]}}}"));
    assertThat(deep).contains(new TraceEvent.ListenerCount(Counted.HANDSHAKES, key, null, 3),
        new TraceEvent.ListenerCount(Counted.QUEUE_PEAK, key, null, 2));
  }

  @Test
  void thirdAckOverflowDropsCarryTheKernelReasonNumber() throws Exception {
    List<TraceEvent> events = decode("drops-ack-overflow.jsonl");
    assertThat(events).filteredOn(e -> e instanceof TraceEvent.ListenerCount c && c.what() == Counted.DROPS)
        .extracting(e -> ((TraceEvent.ListenerCount) e).detail()).contains("40", "3");
  }

  @Test
  void slowAcceptsOnAListenerBoundToTheWildcardAreKeyedByTheConnectionsAddressAndAllAccountedFor() throws Exception {
    // slow_accept.sh: 20 clients to 127.0.0.1:8080, a listener on 0.0.0.0:8080 (backlog 16) accepting one
    // every 200-400 ms; the first accept came at once, the other 19 waited over the 100 ms threshold.
    List<TraceEvent> events = decode("acceptwait-slow-accept.jsonl");
    ListenerKey key = new ListenerKey(4026532177L, AddressFamily.IPV4, "127.0.0.1", 8080);
    List<TraceEvent.SlowAccept> slow = events.stream()
        .filter(e -> e instanceof TraceEvent.SlowAccept s && s.key().equals(key)).map(e -> (TraceEvent.SlowAccept) e).toList();
    assertThat(slow).first().satisfies(s -> {
      assertThat(s.waitMicros()).isEqualTo(299024);
      assertThat(s.handshakeNanos()).isEqualTo(6002127233000L);
      assertThat(s.queue()).isZero();
      assertThat(s.backlog()).isEqualTo(16);
      assertThat(s.comm()).isEqualTo("python3");
    });
    // Later handshakes found more connections ahead of them, never more than the queue holds (backlog + 1).
    assertThat(slow).extracting(TraceEvent.SlowAccept::queue).isSorted().allSatisfy(q -> assertThat(q).isBetween(0L, 16L));
    assertThat(slow).extracting(TraceEvent.SlowAccept::handshakeNanos).isSorted();

    long waits = 0;
    long slowWaits = 0;
    for (TraceEvent e : events) {
      if (e instanceof TraceEvent.ListenerHistogram h && h.what() == TraceEvent.Histogrammed.ACCEPT_WAIT_MICROS
          && h.key().equals(key)) {
        for (BpftraceRecord.Bucket b : h.buckets()) {
          waits += b.count();
          slowWaits += b.min() >= 100_000 ? b.count() : 0;
        }
      }
    }
    assertThat(waits).isEqualTo(20);
    // Every slow wait is either a line or counted as suppressed: lines + suppressed = waits over the threshold.
    assertThat(slow.size() + sum(events, Counted.SLOW_ACCEPTS_SUPPRESSED, key.netns())).isEqualTo(slowWaits).isEqualTo(19);
  }

  @Test
  void stateTransitionsAreCountedByFromAndTo() throws Exception {
    assertThat(decode("states-accept-overflow.jsonl")).contains(new TraceEvent.StateTransitions(7, 2, 40));
  }

  @Test
  void aKeylessTransitionCountIsItsTransitionAndAZeroIsNoEvent() throws Exception {
    assertThat(decoder.decode(reader.read("{\"type\": \"map\", \"data\": {\"@states_10_3\": 27161}}")))
        .containsExactly(new TraceEvent.StateTransitions(10, 3, 27161));
    assertThat(decoder.decode(reader.read("{\"type\": \"map\", \"data\": {\"@states_8_9\": 0}}"))).isEmpty();
    // the keyed map still carries the transitions without a map of their own (and an older states.bt's all)
    assertThat(decoder.decode(reader.read("{\"type\": \"map\", \"data\": {\"@states\": {\"12,7\": 3}}}")))
        .containsExactly(new TraceEvent.StateTransitions(12, 7, 3));
  }

  @Test
  void everyRecordingDecodesWithoutAnUndecodableLine() throws Exception {
    java.nio.file.Path dir = java.nio.file.Path.of(getClass().getResource("/bpf/recorded").toURI());
    List<java.nio.file.Path> files;
    try (var list = java.nio.file.Files.list(dir)) {
      files = list.filter(f -> f.toString().endsWith(".jsonl")).toList();
    }
    assertThat(files).hasSizeGreaterThan(30);
    for (java.nio.file.Path file : files) {
      decode(file.getFileName().toString());
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {
    "{\"type\": \"map\", \"data\": {\"@drops\": {\"4026532177,2,127.0.0.1,8080,40\": 3",
    "garbage",
    "{\"type\": \"printf\"}",
    "[1,2,3]",
    "{\"type\": \"map\", \"data\": {\"@x\": 1}} trailing",
    // a 26-digit count fits no kernel map (u64): it is not a count
    "{\"type\": \"map\", \"data\": {\"@handshakes\": {\"1,2,10.0.0.1,80\": 12345678901234567890123456}}}",
    "{\"type\": \"map\", \"data\": {\"@handshakes\": 12345678901234567890123456}}",
    "{\"type\": \"map\", \"data\": {\"@handshakes\": {\"1,2,10.0.0.1,80\": 1.5}}}",
    "{\"type\": \"hist\", \"data\": {\"@queue_depth\": {\"1,2,10.0.0.1,80\": [{\"min\": 0, \"max\": 1, \"count\": 123456789012345678901234567}]}}}",
    "{\"type\": \"lost_events\", \"data\": {\"events\": 123456789012345678901234567}}",
  })
  void truncatedOrGarbledLinesAreMalformedNotFatal(String line) {
    assertThatThrownBy(() -> reader.read(line)).isInstanceOf(BpftraceJsonReader.MalformedLineException.class);
  }

  @ParameterizedTest
  @ValueSource(strings = {
    // a comm with a quote in it breaks the printf'd JSON (documented in listen.bt)
    "{\"type\": \"printf\", \"data\": \"{\\\"ev\\\":\\\"listen\\\",\\\"netns\\\":1,\\\"family\\\":2,\\\"addr\\\":\\\"1.2.3.4\\\",\\\"port\\\":80,\\\"pid\\\":1,\\\"comm\\\":\\\"a\\\"b\\\",\\\"requested_backlog\\\":1,\\\"backlog\\\":1}\"}",
    "{\"type\": \"printf\", \"data\": \"{\\\"ev\\\":\\\"listen\\\",\\\"family\\\":2}\"}",
    "{\"type\": \"printf\", \"data\": \"{\\\"ev\\\":\\\"teleport\\\"}\"}",
    "{\"type\": \"map\", \"data\": {\"@queue_peak\": {\"4026532177,2\": 3}}}",
    "{\"type\": \"map\", \"data\": {\"@states\": {\"x,1\": 3}}}",
    "{\"type\": \"map\", \"data\": {\"@states_7_2\": {\"1\": 3}}}",
  })
  void recordsThatBreakTheContractAreUndecodable(String line) throws Exception {
    BpftraceRecord record = reader.read(line);
    assertThatThrownBy(() -> decoder.decode(record)).isInstanceOf(TraceEventDecoder.UndecodableException.class);
  }

  @Test
  void aMapPrintWithMoreKeysThanAChildCanHoldIsMalformedAndOneAtTheBoundIsRead() throws Exception {
    assertThatThrownBy(() -> reader.read(mapLine(BpftraceJsonReader.MAX_KEYS + 1)))
        .isInstanceOf(BpftraceJsonReader.MalformedLineException.class).hasMessageContaining("more than 16384 keys");
    BpftraceRecord.MapDump dump = (BpftraceRecord.MapDump) reader.read(mapLine(BpftraceJsonReader.MAX_KEYS));
    assertThat(dump.values()).hasSize(BpftraceJsonReader.MAX_KEYS);
    assertThat(dump.values().get(List.of("4026531840", "2", "10.0.0.7", "80"))).isEqualTo(7);
  }

  private static String mapLine(int keys) {
    StringBuilder b = new StringBuilder("{\"type\": \"map\", \"data\": {\"@handshakes\": {");
    for (int i = 0; i < keys; i++) {
      b.append(i == 0 ? "" : ", ").append("\"4026531840,2,10.0.").append(i >> 8).append('.').append(i & 255)
          .append(",80\": ").append(i);
    }
    return b.append("}}}").toString();
  }

  @Test
  void anEventWhoseNumberDoesNotFitSixtyFourBitsIsUndecodable() throws Exception {
    BpftraceRecord record = reader.read("{\"type\": \"printf\", \"data\": \"{\\\"ev\\\":\\\"listen\\\",\\\"netns\\\":1,"
        + "\\\"family\\\":2,\\\"addr\\\":\\\"1.2.3.4\\\",\\\"port\\\":80,\\\"pid\\\":1,\\\"comm\\\":\\\"a\\\","
        + "\\\"requested_backlog\\\":12345678901234567890123456,\\\"backlog\\\":1}\"}");
    assertThatThrownBy(() -> decoder.decode(record)).isInstanceOf(TraceEventDecoder.UndecodableException.class)
        .hasMessageContaining("requested_backlog");
  }

  @Test
  void scratchMapsPrintedAtExitAreIgnored() throws Exception {
    assertThat(decoder.decode(reader.read("{\"type\": \"map\", \"data\": {\"@acceptwait_printed\": {\"4026532177,2,127.0.0.1,8080\": 1}}}"))).isEmpty();
  }
}
