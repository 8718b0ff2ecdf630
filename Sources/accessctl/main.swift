import AccessCtlKit
import Glibc

exit(AccessCtl.run(Array(CommandLine.arguments.dropFirst())))
