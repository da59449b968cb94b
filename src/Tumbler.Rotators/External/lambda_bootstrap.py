# Tumbler's runner for Python Lambda handlers: python3 -c THIS MODULE FUNCTION, in the function's
# working directory, with the rotation event as JSON on standard input. Imports MODULE from the working
# directory and calls FUNCTION(event, context) as Lambda does. Exit code 0 when the handler returns;
# 1 with the traceback on standard error when it raises (Tumbler keeps the tail of standard error in
# the rotation's failure record).
import importlib
import json
import logging
import os
import sys
import time
import traceback
import uuid


class LambdaContext:
    """The parts of Lambda's context object rotation functions use."""

    def __init__(self, function_name, timeout_seconds):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = os.environ.get("TUMBLER_FUNCTION_ARN", "")
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/tumbler/functions/" + function_name
        self.log_stream_name = self.aws_request_id
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main():
    module_name, function_name = sys.argv[1], sys.argv[2]
    # Lambda's runtime gives the root logger a handler; so does this runner (standard error).
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="[%(levelname)s] %(message)s")
    event = json.load(sys.stdin)
    sys.path.insert(0, os.getcwd())
    context = LambdaContext(os.environ.get("AWS_LAMBDA_FUNCTION_NAME", module_name),
                            float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "30")))
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        result = handler(event, context)
    except BaseException:  # noqa: B036 - any failure, SystemExit included, fails the step
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    if result is not None:
        print(json.dumps(result, default=str))


main()
