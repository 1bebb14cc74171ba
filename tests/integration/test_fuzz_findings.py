# test_fuzz_findings: what the whole-path fuzzer (tests/fuzz/fuzz_session)
# found, replayed against the real daemon, so that it stays fixed even
# when the fuzzer is not run long enough to find it again.

import harness
from harness import Daemon, test
from chatlib import assert_alive, expect_error, user

# A target that is no valid user name (nor a room) is never looked up in
# the store; 5ec2cd1 then freed the uninitialised pointers of the row it
# did not read: one line from any user crashed the daemon (SIGSEGV).
NOT_NAMES = ["-x", "", ".dot", "a b", "x" * 40, "caf\u00e9"]


@test
def test_message_typing_history_to_an_invalid_name_answer_no_such_user():
	d = Daemon()
	a = user(d, "alice")
	for to in NOT_NAMES:
		expect_error(a, {"type": "message", "to": to, "content": "hi"},
		    "no_such_user")
		expect_error(a, {"type": "typing", "to": to, "state": "start"},
		    "no_such_user")
		expect_error(a, {"type": "history", "with": to}, "no_such_user")
	assert_alive(a)
	# And the daemon serves newcomers as ever.
	b = user(d, "bob")
	assert_alive(b)


harness.run()
