package dev.backlogagent.netlink;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.NativeLong;
import com.sun.jna.Pointer;

/** The few libc calls that Java's own APIs do not offer: netlink sockets and setns(2). */
interface LibC extends Library {
  LibC INSTANCE = Native.load("c", LibC.class);

  int AF_NETLINK = 16;
  int SOCK_RAW = 3;
  int SOCK_CLOEXEC = 0x80000;
  int O_RDONLY = 0;
  int O_CLOEXEC = 0x80000;
  int CLONE_NEWNET = 0x40000000;

  int socket(int domain, int type, int protocol) throws LastErrorException;

  NativeLong send(int fd, byte[] buf, NativeLong len, int flags) throws LastErrorException;

  NativeLong recv(int fd, Pointer buf, NativeLong len, int flags) throws LastErrorException;

  int open(String path, int flags) throws LastErrorException;

  int close(int fd) throws LastErrorException;

  int setns(int fd, int nstype) throws LastErrorException;
}
