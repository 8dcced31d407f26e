# Python 2 (Autobahn|Testsuite has no Python 3 port): runs Autobahn's fuzzingserver, which
# tests WebSocket *clients*, on 127.0.0.1 only, with no web page and a deadline.
#
#   fuzzingserver.py SPEC.json DEADLINE_SECONDS
#
# `wstest -m fuzzingserver` binds every interface, serves a web page on port 8080 and never
# exits. This binds the spec's url on 127.0.0.1 (port 0 picks a free port), prints
# "PORT <n>" once listening, and stops the reactor when the client asks for its reports
# with shutdownOnComplete=true, or after DEADLINE_SECONDS, whichever comes first.
import json
import sys

# The reactor must be chosen (epoll) before anything else imports Twisted.
from autobahntestsuite import choosereactor  # noqa: F401  (installs the reactor)
from twisted.internet import reactor

from autobahn.twisted.websocket import listenWS
from autobahntestsuite.fuzzing import FuzzingServerFactory


def main():
    spec = json.load(open(sys.argv[1]))
    deadline = float(sys.argv[2])
    factory = FuzzingServerFactory(spec)
    port = listenWS(factory, interface="127.0.0.1")
    sys.stdout.write("PORT %d\n" % port.getHost().port)
    sys.stdout.flush()

    def expire():
        sys.stdout.write("DEADLINE: stopping after %s s\n" % deadline)
        sys.stdout.flush()
        reactor.stop()

    reactor.callLater(deadline, expire)
    reactor.run()


if __name__ == "__main__":
    main()
