#!/usr/bin/env python3
"""Calls safegate.v1.IdentityService/WhoAmI over mutual TLS with stubs generated from
the repository's proto/ directory alone, and checks the answers.

Usage: whoami_client.py --target HOST:PORT --pki DIR [--server-name NAME]

DIR holds the dev PKI that `safegate pki init` writes: ca.pem and <system>.pem /
<system>.key per agency system. Prints `ok   <name>` or `FAIL <name>: <why>` per check,
then `N passed, N failed`; exits 1 if any check failed.
"""

import argparse
import glob
import hashlib
import importlib
import os
import ssl
import sys
import tempfile

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(REPO_ROOT, "proto")
TIMEOUT_SECS = 10


class CheckFailed(Exception):
    pass


def expect(condition, why):
    if not condition:
        raise CheckFailed(why)


def generate_stubs(out_dir):
    """Runs grpc_tools.protoc on proto/safegate/v1/*.proto and imports the result."""
    from grpc_tools import protoc

    files = sorted(glob.glob(os.path.join(PROTO_DIR, "safegate", "v1", "*.proto")))
    if not files:
        raise RuntimeError(f"no .proto files under {PROTO_DIR}/safegate/v1")
    # grpc_tools ships the well-known types (google/protobuf/*.proto) as its own include.
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *files,
    ]
    code = protoc.main(args)
    if code != 0:
        raise RuntimeError(f"grpc_tools.protoc exited {code}")
    sys.path.insert(0, out_dir)
    importlib.invalidate_caches()
    common = importlib.import_module("safegate.v1.common_pb2")
    identity = importlib.import_module("safegate.v1.identity_pb2")
    identity_grpc = importlib.import_module("safegate.v1.identity_pb2_grpc")
    return common, identity, identity_grpc


class Gateway:
    def __init__(self, target, pki_dir, server_name, common, identity, identity_grpc):
        self.target = target
        self.pki_dir = pki_dir
        self.server_name = server_name
        self.common = common
        self.identity = identity
        self.identity_grpc = identity_grpc
        self.channels = []

    def read(self, name):
        with open(os.path.join(self.pki_dir, name), "rb") as f:
            return f.read()

    def channel(self, system):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.read("ca.pem"),
            private_key=self.read(f"{system}.key"),
            certificate_chain=self.read(f"{system}.pem"),
        )
        options = []
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        channel = grpc.secure_channel(self.target, credentials, options=options)
        self.channels.append(channel)
        return channel

    def who_am_i(self, system, context=None):
        stub = self.identity_grpc.IdentityServiceStub(self.channel(system))
        request = self.identity.WhoAmIRequest()
        if context is not None:
            request.context.CopyFrom(self.common.PractitionerContext(**context))
        return stub.WhoAmI(request, timeout=TIMEOUT_SECS)

    def expect_error(self, system, context, code):
        try:
            response = self.who_am_i(system, context)
        except grpc.RpcError as error:
            expect(
                error.code() == code,
                f"expected {code.name}, got {error.code().name}: {error.details()!r}",
            )
            return error.details() or ""
        raise CheckFailed(f"expected {code.name}, got OK: {response}")

    def close(self):
        for channel in self.channels:
            channel.close()


def certificate_sha256(pem_path):
    with open(pem_path, "r", encoding="ascii") as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


def role_names(common, roles):
    return [common.Role.Name(r) for r in roles]


def check_identity_without_context(gw):
    common = gw.common
    response = gw.who_am_i("police-iom")
    expect(response.system_id == "police-iom", f"system_id {response.system_id!r}")
    expect(
        response.agency == common.AGENCY_POLICE,
        f"agency {common.Agency.Name(response.agency)}",
    )
    roles = role_names(common, response.assertable_roles)
    for wanted in ("ROLE_IOM_OFFICER", "ROLE_POLICE_OFFICER"):
        expect(wanted in roles, f"assertable_roles {roles} lack {wanted}")
    fingerprint = certificate_sha256(os.path.join(gw.pki_dir, "police-iom.pem"))
    expect(
        response.certificate_sha256 == fingerprint,
        f"certificate_sha256 {response.certificate_sha256!r}, police-iom.pem is {fingerprint!r}",
    )
    expect(not response.HasField("context"), f"unexpected context {response.context}")


def check_context_echoed(gw):
    common = gw.common
    response = gw.who_am_i(
        "police-iom", {"practitioner_id": "IOM-0001", "role": common.ROLE_IOM_OFFICER}
    )
    expect(response.HasField("context"), "no context in the response")
    context = response.context
    expect(
        context.practitioner_id == "IOM-0001",
        f"practitioner_id {context.practitioner_id!r}",
    )
    expect(
        context.role == common.ROLE_IOM_OFFICER,
        f"role {common.Role.Name(context.role)}",
    )


def check_role_not_assertable(gw):
    details = gw.expect_error(
        "nursery",
        {"practitioner_id": "DSL-0001", "role": gw.common.ROLE_IOM_OFFICER},
        grpc.StatusCode.PERMISSION_DENIED,
    )
    expect(
        "registry.role_not_assertable" in details,
        f"details do not name registry.role_not_assertable: {details!r}",
    )


def check_empty_practitioner_id(gw):
    details = gw.expect_error(
        "police-iom",
        {"practitioner_id": "", "role": gw.common.ROLE_IOM_OFFICER},
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    expect(
        "context.practitioner_id" in details,
        f"details do not mention context.practitioner_id: {details!r}",
    )


def check_health(gw):
    stub = health_pb2_grpc.HealthStub(gw.channel("police-iom"))
    response = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECS)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    expect(response.status == health_pb2.HealthCheckResponse.SERVING, f"status {status}")


CHECKS = [
    ("whoami police-iom without context", check_identity_without_context),
    ("whoami police-iom echoes its practitioner context", check_context_echoed),
    ("nursery asserting ROLE_IOM_OFFICER is PERMISSION_DENIED", check_role_not_assertable),
    ("empty practitioner_id is INVALID_ARGUMENT", check_empty_practitioner_id),
    ("health of the overall service is SERVING", check_health),
]


def one_line(text):
    return " ".join(str(text).split())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="gateway address, HOST:PORT")
    parser.add_argument("--pki", required=True, help="dev PKI directory (ca.pem, <system>.pem/.key)")
    parser.add_argument(
        "--server-name",
        help="name to verify the server certificate against instead of the target host",
    )
    args = parser.parse_args()

    passed = failed = 0
    with tempfile.TemporaryDirectory(prefix="safegate-stubs-") as out_dir:
        try:
            common, identity, identity_grpc = generate_stubs(out_dir)
        except Exception as error:  # noqa: BLE001 - reported as a failed check
            print(f"FAIL generate stubs from proto/: {one_line(error)}")
            print("0 passed, 1 failed")
            return 1
        gw = Gateway(args.target, args.pki, args.server_name, common, identity, identity_grpc)
        try:
            for name, check in CHECKS:
                try:
                    check(gw)
                except CheckFailed as error:
                    failed += 1
                    print(f"FAIL {name}: {one_line(error)}")
                except grpc.RpcError as error:
                    failed += 1
                    print(f"FAIL {name}: {error.code().name}: {one_line(error.details())}")
                except Exception as error:  # noqa: BLE001 - any other fault fails the check
                    failed += 1
                    print(f"FAIL {name}: {type(error).__name__}: {one_line(error)}")
                else:
                    passed += 1
                    print(f"ok   {name}")
                sys.stdout.flush()
        finally:
            gw.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
