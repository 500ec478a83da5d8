// ctl: a drop-in for conntrack(8). Everything but this call is in the
// CTCommands library, where the argument fuzzer and the unit tests reach it.
import CTCommands

ctlMain()
