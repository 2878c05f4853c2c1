#!/usr/bin/perl
# PID 1 of a SCRIPT run's own PID and mount namespaces (see sandbox.ts for how it is started).
#
# As root, inside the new mount namespace, it builds the filesystem view the script gets (an
# allow-list: a tmpfs root with the system folders bound read-only, the run's working directory
# read-write, a /proc of this PID namespace, a minimal /dev, an empty /tmp; hidden paths covered),
# pivots into it and drops the old root. Then it starts the command (prlimit … setpriv … interpreter)
# as its child, under the script's uid and gid, reaps every orphan, forwards TERM/INT/HUP to every process of the
# namespace, and reports how the command ended on fd 3: `exit <code>` or `signal <number>` (a
# PID-namespace init cannot die of a signal it has no handler for, so its own exit status could
# not say "killed by SIGXCPU"), or `error <message>` when the view could not be built or the
# command could not be started (an error line comes first and wins).
#
# fd 3 is a socket whose other end only the worker holds: end-of-file on it means the worker is
# gone, and everything in the namespace is killed at once (besides unshare's --kill-child, which
# covers the same case from outside). When this process exits, the kernel kills every process
# left in the namespace: nothing a script starts outlives its run.
#
# What to do comes on fd 3, not in argv (argv is world-readable in /proc; the environment may hold a
# job's secrets): NUL-terminated `key=value` entries, ended by an empty entry.
#   root=DIR      an empty folder to mount the new root on      workdir=DIR  bound read-write
#   uid=N gid=N   who the command runs as (never 0)              tmpsize=SIZE /tmp and /dev/shm
#   system=PATH   a top-level system path (symlink copied, folder bound read-only)
#   ro=PATH / rw=PATH   more paths bound read-only / read-write  hide=PATH    covered (empty)
#   mount=, umount=, pivot_root=   where those programs are      env=NAME=VALUE, arg=ARG (the command)
# This process itself runs with an empty environment: nothing of the job's reaches a program that
# runs as root (the command drops to uid/gid before its first exec).
# Only perl-base modules: perl-base is Essential on Debian, so this runs wherever apt does.
use strict;
use warnings;
use POSIX qw(WNOHANG _exit);
use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC F_GETFL F_SETFL O_NONBLOCK);
use IO::Handle;
use IO::Select;

open(my $ctl, '+<&=', 3) or die "chronos sandbox: no control socket on fd 3: $!\n";
cloexec($ctl);
$ctl->autoflush(1);

my (%one, @system, @ro, @rw, @hide, %env, @command);
{
  my $buf = '';
  ENTRIES: for (;;) {
    while ((my $at = index($buf, "\0")) >= 0) {
      my $entry = substr($buf, 0, $at);
      substr($buf, 0, $at + 1) = '';
      last ENTRIES if $entry eq '';
      my ($key, $value) = split /=/, $entry, 2;
      die "chronos sandbox: bad entry $key\n" unless defined $value;
      if    ($key eq 'system') { push @system,  $value }
      elsif ($key eq 'ro')     { push @ro,      $value }
      elsif ($key eq 'rw')     { push @rw,      $value }
      elsif ($key eq 'hide')   { push @hide,    $value }
      elsif ($key eq 'arg')    { push @command, $value }
      elsif ($key eq 'env')    { my ($n, $v) = split /=/, $value, 2; $env{$n} = $v // '' }
      elsif ($key =~ /^(root|workdir|uid|gid|tmpsize|mount|umount|pivot_root)$/) { $one{$key} = $value }
      else { die "chronos sandbox: unknown entry $key\n" }
    }
    my $n = sysread($ctl, $buf, 65536, length $buf);
    # The worker went away before it said what to run.
    _exit(137) unless $n;
  }
}
my ($root, $workdir, $uid, $gid) = @one{qw(root workdir uid gid)};
# What `ps` shows inside: a name, not the path of this file on the worker's host.
$0 = 'chronos-sandbox-init';
my $tmpsize = $one{tmpsize} // '64m';

# Errors of the setup (mount's included) go to the worker, not into the script's output.
open(my $stderr, '>&', \*STDERR) or die "chronos sandbox: $!\n";
cloexec($stderr);
open(STDERR, '>&', $ctl) or die "chronos sandbox: $!\n";
my $complete = @command && defined $root && defined $workdir && ($uid // '') =~ /^[1-9]\d*$/
  && ($gid // '') =~ /^[1-9]\d*$/ && defined $one{mount} && defined $one{umount} && defined $one{pivot_root};
unless ($complete && eval { build_view(); 1 }) {
  my $why = $@ || "incomplete instructions (a uid or gid of 0 is refused)\n";
  $why =~ s/\s+$//;
  $why =~ s/\n/; /g;
  print $ctl "error $why\n";
  _exit(125);
}
open(STDERR, '>&', $stderr) or _exit(125);

# The self-pipe wakes the loop below for signals that arrive at any moment.
pipe(my $wake_r, my $wake_w) or fail("pipe: $!");
for my $fh ($wake_r, $wake_w) {
  cloexec($fh);
  fcntl($fh, F_SETFL, fcntl($fh, F_GETFL, 0) | O_NONBLOCK);
}
$SIG{CHLD} = sub { syswrite($wake_w, 'c') };
for my $sig (qw(TERM INT HUP)) {
  $SIG{$sig} = sub { kill $sig, -1; syswrite($wake_w, 's') };
}

my $main = fork();
fail("fork: $!") unless defined $main;
if ($main == 0) {
  $SIG{$_} = 'DEFAULT' for qw(CHLD TERM INT HUP);
  # Groups first (while still root), then the uid; a failure here must never run the command.
  # setgid and setuid as root set the real, effective and saved ids; `$) = "g g"` also sets the
  # supplementary groups to just g.
  POSIX::setgid($gid);
  $) = "$gid $gid";
  POSIX::setuid($uid);
  if ($< != $uid || $> != $uid || $( + 0 != $gid || $) + 0 != $gid) {
    print $ctl "error could not become uid $uid gid $gid\n";
    _exit(126);
  }
  %ENV = %env;
  { no warnings 'exec'; exec { $command[0] } @command; }
  print $ctl "error cannot run $command[0]: $!\n";
  _exit(127);
}

my $status;
my $select = IO::Select->new($ctl, $wake_r);
for (;;) {
  while ((my $pid = waitpid(-1, WNOHANG)) > 0) {
    $status = $? if $pid == $main;
  }
  last if defined $status;
  for my $fh ($select->can_read()) {
    if ($fh == $ctl) {
      my $n = sysread($ctl, my $buf, 256);
      # The worker died (or closed its end): nothing of this run may go on.
      if (!defined $n || $n == 0) { kill 'KILL', -1; _exit(137) }
    } else {
      sysread($wake_r, my $buf, 256);
    }
  }
}
if ($status & 127) {
  print $ctl 'signal ', $status & 127, "\n";
  _exit(128 + ($status & 127));
}
print $ctl 'exit ', $status >> 8, "\n";
_exit($status >> 8);

sub fail {
  print $ctl "error $_[0]\n";
  kill 'KILL', -1;
  _exit(125);
}

sub cloexec {
  my ($fh) = @_;
  fcntl($fh, F_SETFD, fcntl($fh, F_GETFD, 0) | FD_CLOEXEC) or die "chronos sandbox: fcntl: $!\n";
}

sub run {
  my @cmd = @_;
  system { $cmd[0] } @cmd;
  die "@cmd: exit status $?\n" if $? != 0;
}

sub mkpath {
  my ($dir) = @_;
  my $path = '';
  for my $part (grep { length } split m{/}, $dir) {
    $path .= "/$part";
    next if -d $path;
    mkdir $path or die "mkdir $path: $!\n";
  }
}

# A path of the host at the same path in the new root (a folder or a file), bound with `mode`.
sub bind_path {
  my ($path, $mode) = @_;
  my $target = "$root$path";
  if (-d $path) {
    mkpath($target);
  } elsif (-e $path) {
    (my $parent = $target) =~ s{/[^/]*$}{};
    mkpath($parent);
    open(my $fh, '>>', $target) or die "create $target: $!\n";
    close $fh;
  } else {
    die "$path does not exist\n";
  }
  run($one{mount}, '--bind', '-o', "$mode,nosuid,nodev", $path, $target);
}

sub tmpfs {
  my ($target, $options) = @_;
  mkpath($target);
  run($one{mount}, '-t', 'tmpfs', '-o', "nosuid,nodev,$options", 'chronos-sandbox', $target);
}

sub build_view {
  tmpfs($root, 'mode=0755,size=1m');
  for my $path (@system) {
    if (-l $path) {
      symlink(readlink($path), "$root$path") or die "symlink $root$path: $!\n";
    } elsif (-e $path) {
      bind_path($path, 'ro');
    }
  }
  bind_path('/sys', 'ro') if -d '/sys';

  mkpath("$root/proc");
  run($one{mount}, '-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', "$root/proc");

  tmpfs("$root/dev", 'mode=0755,size=64k,noexec');
  for my $dev (qw(null zero full random urandom tty)) {
    next unless -e "/dev/$dev";
    open(my $fh, '>', "$root/dev/$dev") or die "create $root/dev/$dev: $!\n";
    close $fh;
    run($one{mount}, '--bind', "/dev/$dev", "$root/dev/$dev");
  }
  symlink('/proc/self/fd', "$root/dev/fd") or die "symlink: $!\n";
  my $n = 0;
  symlink("/proc/self/fd/" . $n++, "$root/dev/$_") or die "symlink: $!\n" for qw(stdin stdout stderr);
  tmpfs("$root/dev/shm", "mode=1777,size=$tmpsize");
  tmpfs("$root/tmp", "mode=1777,size=$tmpsize");
  # After /tmp and /dev: a path given to scripts may lie inside them.
  bind_path($_, 'ro') for @ro;
  bind_path($_, 'rw') for @rw;
  # The name server file may be a link into /run (systemd-resolved): the file itself, then.
  if (-l '/etc/resolv.conf' && !-e "$root/etc/resolv.conf") {
    my $real = readlink('/etc/resolv.conf');
    $real = "/etc/$real" unless $real =~ m{^/};
    bind_path($real, 'ro') if -f $real;
  }
  bind_path($workdir, 'rw');

  for my $path (@hide) {
    my $target = "$root$path";
    next unless -e $target;
    if (-d $target) {
      run($one{mount}, '-t', 'tmpfs', '-o', 'ro,nosuid,nodev,noexec,mode=0755,size=4k', 'chronos-hidden', $target);
    } else {
      run($one{mount}, '--bind', '-o', 'ro', '/dev/null', $target);
    }
  }

  mkdir "$root/.old-root" or die "mkdir: $!\n";
  chdir $root or die "chdir $root: $!\n";
  run($one{pivot_root}, '.', '.old-root');
  chdir '/' or die "chdir /: $!\n";
  run($one{umount}, '--lazy', '/.old-root');
  rmdir '/.old-root' or die "rmdir /.old-root: $!\n";
  run($one{mount}, '-o', 'remount,ro,nosuid,nodev', '/');
  chdir $workdir or die "chdir $workdir: $!\n";
}
