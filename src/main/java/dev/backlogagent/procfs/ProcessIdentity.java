package dev.backlogagent.procfs;

/**
 * Who a process is.
 *
 * @param comm the kernel's short name (/proc/PID/comm), as BPF programs see it
 * @param cmdline the arguments joined by spaces; empty for kernel threads
 * @param containerId the container runtime's id when the process lives in a container's cgroup, else null
 */
public record ProcessIdentity(int pid, String comm, String cmdline, String containerId) {}
