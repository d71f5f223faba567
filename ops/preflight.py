"""``make preflight STAGE=…``: read-only checks of your AWS account before ``make deploy``.

    python -m ops.preflight --stage dev

Uses your credentials (boto3's default chain) and only Get, Describe and List calls. Prints one line per check,
each FAIL with its fix, and exits 1 if any check failed.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Iterator

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from apppath import APP_DIR
from infra.config import StageConfig, StageConfigError, stack_name
from infra.handlers.two_way import REFUSED  # how the stack's KeywordsNotSet output words a refusal
from ops import (CREDENTIALS_FIX, FAIL, OK, REGION_FIX, SKIP, WARN, Result, aws_error, check_endpoint, error_code,
                 mask, refuse, region, report, stage_settings)

# Regions whose End User Messaging SMS offers the SMS/MMS channel. Source: AWS End User Messaging SMS User Guide,
# "What is AWS End User Messaging SMS?", Regional availability table (rows with "Supports SMS/MMS channel: Yes"),
# https://docs.aws.amazon.com/sms-voice/latest/userguide/what-is-sms-mms.html#sms-regions
EUM_SMS_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-south-2", "ap-southeast-3",
    "ap-southeast-4", "ap-south-1", "ap-northeast-3", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2",
    "ap-northeast-1", "ap-southeast-6", "ap-east-2", "us-gov-east-1", "us-gov-west-1", "ca-central-1", "ca-west-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-south-1", "eu-west-3", "eu-south-2", "eu-north-1", "eu-central-2",
    "il-central-1", "me-south-1", "me-central-1", "sa-east-1",
})
# Regions where Amazon SNS sends SMS. Source: Amazon SNS Developer Guide, "Supported countries and regions",
# https://docs.aws.amazon.com/sns/latest/dg/sns-supported-regions-countries.html. Only the rows this tool's authors
# could read (US East (Ohio) through Europe (Paris)) are here; Asia Pacific (Seoul) is not on that list. Any other
# region gets a WARN that points at the page, not a FAIL.
SNS_SMS_REGIONS = frozenset({
    "us-east-2", "us-east-1", "us-west-1", "us-west-2", "af-south-1", "ap-south-2", "ap-southeast-3",
    "ap-southeast-4", "ap-south-1", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1",
    "ca-central-1", "ca-west-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-south-1", "eu-west-3",
})
# Countries whose row of End User Messaging's SMS table says "Supports two-way SMS: Yes": the table the app's
# country list copies (app/chalicelib/sending/countries.json names its source and the date it was read). AWS lists no
# AWS Regions for two-way SMS (its pages say only "certain countries and regions"), so the Region check below
# looks for a number of the account that has two-way on already.
_SMS_TABLE = json.loads((APP_DIR / "chalicelib" / "sending" / "countries.json").read_text(encoding="utf-8"))
TWO_WAY_COUNTRIES = frozenset(row["iso"] for row in _SMS_TABLE["rows"] if row["twoWay"] == "Yes")
TWO_WAY_COUNTRIES_URL = _SMS_TABLE["source"]["sms"]
EUM_REGIONS_URL = "https://docs.aws.amazon.com/sms-voice/latest/userguide/what-is-sms-mms.html#sms-regions"
SNS_REGIONS_URL = "https://docs.aws.amazon.com/sns/latest/dg/sns-supported-regions-countries.html"

# The bootstrap stack version this assembly needs: aws-cdk-lib 2.x's DefaultStackSynthesizer
# (core/lib/stack-synthesizers/default-synthesizer.js, MIN_BOOTSTRAP_STACK_VERSION) requires 6 for the deploy role
# and the asset publishing roles, and the template's CheckBootstrapVersion rule refuses versions 1 to 5.
MIN_BOOTSTRAP_VERSION = 6
DEFAULT_QUALIFIER = "hnb659fds"  # DefaultStackSynthesizer.DEFAULT_QUALIFIER
# A stack in one of these states has its resources in place (an update rollback restores the previous version).
USABLE_STACK_STATUSES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE",
                         "IMPORT_ROLLBACK_COMPLETE"}

# The name Service Quotas gives SNS's SMS spend quota (AWS General Reference, "Amazon Simple Notification Service
# endpoints and quotas": "Account spend threshold for SMS", 1.00 USD by default).
SNS_SPEND_QUOTA_NAME = "account spend threshold for sms"
SNS_QUOTA_FIX = ("raise the quota to at least ${limit} in {region}: AWS Support Center > Create case > Service limit "
                 "increase > Limit type \"SNS Text Messaging\", Resource type \"General Limits\", New limit {limit} "
                 "(or Service Quotas console > Amazon SNS > Account spend threshold for SMS > Request increase); "
                 "or lower monthlySpendLimitUsd in cdk.json to {quota} or less. "
                 "https://docs.aws.amazon.com/sns/latest/dg/channels-sms-awssupport-spend-threshold.html")
EUM_QUOTA_FIX = ("request a spending quota of at least ${limit} for End User Messaging SMS in {region} (AWS Support "
                 "Center > Create case > Service limit increase; "
                 "https://docs.aws.amazon.com/sms-voice/latest/userguide/awssupport-spend-threshold.html), or lower "
                 "monthlySpendLimitUsd in cdk.json to {quota} or less")

IDENTITY_ARN = re.compile(r"arn:(?P<partition>aws[a-z-]*):sms-voice:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
                          r"(?P<type>phone-number|pool|sender-id)/(?P<id>[^/]+)(?:/(?P<country>[A-Z]{2}))?")
LIST_NUMBERS = ("aws pinpoint-sms-voice-v2 describe-phone-numbers --region {region} "
                "--query 'PhoneNumbers[].[PhoneNumberId,NumberCapabilities,Status]' --output text")
LIST_POOLS = ("aws pinpoint-sms-voice-v2 describe-pools --region {region} "
              "--query 'Pools[].[PoolId,Status]' --output text")


def check_credentials(sts) -> Result:
    try:
        identity = sts.get_caller_identity()
    except EndpointConnectionError as err:
        return Result(FAIL, "credentials", aws_error(err), "check the network connection and any proxy settings")
    except (ClientError, BotoCoreError) as err:
        return Result(FAIL, "credentials", aws_error(err), CREDENTIALS_FIX)
    return Result(OK, "credentials", f"account {identity['Account']} as {identity['Arn']}", value=identity["Account"])


def check_credentials_found(session) -> Result:
    """Without a region, STS cannot be asked: whether the shell has credentials at all, found the way boto3 finds
    them, without a call."""
    try:
        found = session.get_credentials()
    except BotoCoreError as err:  # a profile that names a source boto3 cannot read
        return Result(FAIL, "credentials", aws_error(err), CREDENTIALS_FIX)
    if found is None:
        return Result(FAIL, "credentials", str(NoCredentialsError()), CREDENTIALS_FIX)
    return Result(SKIP, "credentials", "found; checked with AWS once a region is set")


def check_stage(stage: str, raw: dict, sms, region_name: str) -> Result:
    """The stage's settings parse; an E.164 originationIdentity is resolved to the PhoneNumberId to use instead."""
    try:
        config = StageConfig.from_dict(stage, raw)
        defaults = "" if raw else " (no settings in cdk.json: all defaults)"
        return Result(OK, "stage settings", f"{stage}: smsProvider {config.sms_provider}, MMS "
                      f"{'on' if config.origination_identity else 'off'}{defaults}", value=config)
    except StageConfigError as err:
        identity = raw.get("originationIdentity")
        if not (isinstance(identity, str) and identity.startswith("+")):
            return Result(FAIL, "stage settings", str(err), f"edit context.stages.{stage} in cdk.json")
    # An E.164 number: IAM authorizes sends on the number's id, so name the id to put in cdk.json.
    try:
        found = next((number for page in sms.get_paginator("describe_phone_numbers").paginate()
                      for number in page["PhoneNumbers"] if number["PhoneNumber"] == identity), None)
    except (ClientError, BotoCoreError) as err:
        return Result(FAIL, "stage settings", f"originationIdentity is the number {mask(identity)}, not its id; "
                      f"looking it up failed: {aws_error(err)}",
                      f"set originationIdentity to the number's PhoneNumberId (phone-…); list them with "
                      f"`{LIST_NUMBERS.format(region=region_name)}`")
    if found is None:
        return Result(FAIL, "stage settings", f"originationIdentity is the number {mask(identity)}, and no phone "
                      f"number in this account and {region_name} has it",
                      f"set originationIdentity to the PhoneNumberId (phone-…) of a number you own in "
                      f"{region_name}; list them with `{LIST_NUMBERS.format(region=region_name)}`")
    number_id = found.get("PhoneNumberId") or found["PhoneNumberArn"].rsplit("/", 1)[-1]
    fix = f"set \"originationIdentity\": \"{number_id}\" in context.stages.{stage} of cdk.json"
    detail = f"originationIdentity is the number {mask(identity)}; IAM authorizes sends on its id, {number_id}"
    try:
        config = StageConfig.from_dict(stage, {**raw, "originationIdentity": number_id})
    except StageConfigError as err:
        return Result(FAIL, "stage settings", f"{detail}; and {err}", f"{fix}, and edit the rest as the error says")
    return Result(FAIL, "stage settings", detail, f"{fix} (the checks below use it)", value=config)


def check_region(region_name: str | None, config: StageConfig | None) -> Result:
    if not region_name:
        return Result(FAIL, "region", "no region is set", REGION_FIX)
    if region_name not in EUM_SMS_REGIONS:
        return Result(FAIL, "region", f"{region_name} does not offer End User Messaging SMS",
                      f"deploy in a region that offers End User Messaging SMS and SNS SMS, e.g. "
                      f"`export AWS_DEFAULT_REGION=us-east-1`; lists: {EUM_REGIONS_URL}, {SNS_REGIONS_URL}")
    if region_name not in SNS_SMS_REGIONS and (config is None or config.sms_provider == "sns"):
        return Result(WARN, "region", f"{region_name} offers End User Messaging SMS; check that it is on the SNS "
                      f"SMS list before sending SMS through SNS", f"see {SNS_REGIONS_URL}, or deploy in us-east-1")
    offered = "End User Messaging SMS and SNS SMS" if region_name in SNS_SMS_REGIONS else "End User Messaging SMS"
    return Result(OK, "region", f"{region_name} offers {offered}")


def check_identity(sms, config: StageConfig, region_name: str, account: str) -> Result:
    """The origination identity exists in this account and region, is active, and has SMS (and MMS: MMS is on)."""
    identity = config.origination_identity
    needed = ["SMS", "MMS"]  # an origination identity turns MMS on
    name = "origination identity"
    arn = IDENTITY_ARN.fullmatch(identity)
    if arn:
        if arn["region"] != region_name:
            return Result(FAIL, name, f"{identity} is in {arn['region']}, the stack deploys to {region_name}",
                          f"deploy in {arn['region']} (`export AWS_DEFAULT_REGION={arn['region']}`: the media bucket "
                          f"must be in the identity's region), or use an identity in {region_name}")
        if arn["account"] != account:
            return Result(FAIL, name, f"{identity} belongs to account {arn['account']}, these credentials to "
                          f"{account}", f"run with credentials for account {arn['account']}, or use an identity "
                          f"that account {account} owns (the media bucket must be in the identity's account)")
        kind, resource_id = arn["type"], identity
    else:
        kind, resource_id = ("pool" if identity.startswith("pool-") else "phone-number"), identity
    try:
        if kind == "phone-number":
            number = sms.describe_phone_numbers(PhoneNumberIds=[resource_id])["PhoneNumbers"][0]
            status, capabilities = number["Status"], set(number["NumberCapabilities"])
            what = f"phone number {number.get('PhoneNumberId', resource_id)} ({number['NumberType']}, " \
                   f"{number['IsoCountryCode']})"
            found = {"countries": {number["IsoCountryCode"]}, "info": number}
        elif kind == "pool":
            pool = sms.describe_pools(PoolIds=[resource_id])["Pools"][0]
            status = pool["Status"]
            members = [member for page in sms.get_paginator("list_pool_origination_identities").paginate(
                PoolId=pool["PoolId"]) for member in page["OriginationIdentities"]]
            capabilities = {capability for member in members for capability in member["NumberCapabilities"]}
            what = f"pool {pool['PoolId']} ({len(members)} identities)"
            found = {"countries": {member["IsoCountryCode"] for member in members}, "info": pool}
        else:  # sender-id/<id>/<country>: SMS only
            sms.describe_sender_ids(SenderIds=[{"SenderId": arn["id"], "IsoCountryCode": arn["country"]}])
            status, capabilities, what = "ACTIVE", {"SMS"}, f"sender id {arn['id']} ({arn['country']})"
            found = None
    except ClientError as err:
        listing = LIST_POOLS if kind == "pool" else LIST_NUMBERS
        if error_code(err) == "ResourceNotFoundException":
            return Result(FAIL, name, f"{identity} does not exist in account {account}, {region_name}",
                          f"set originationIdentity to one you own here; list them with "
                          f"`{listing.format(region=region_name)}`")
        return Result(FAIL, name, f"{identity}: {aws_error(err)}",
                      "allow these credentials sms-voice:Describe* (read-only), then run preflight again")
    if found:  # what the two-way checks read: the identity's countries and two-way settings
        found["what"] = what
    if status != "ACTIVE":
        return Result(FAIL, name, f"{what} is {status}, not ACTIVE",
                      "wait until it is ACTIVE; a registration may still be in review (End User Messaging SMS "
                      "console > Registrations)", value=found)
    missing = [capability for capability in needed if capability not in capabilities]
    if missing:
        fix = (f"add a number with {' and '.join(missing)} to the pool (`aws pinpoint-sms-voice-v2 "
               f"associate-origination-identity --pool-id {resource_id} --origination-identity phone-… "
               f"--iso-country-code US`)" if kind == "pool" else
               f"set originationIdentity to a number or pool with {' and '.join(needed)} (MMS is on whenever "
               f"originationIdentity is set); list numbers with `{LIST_NUMBERS.format(region=region_name)}`")
        return Result(FAIL, name, f"{what} lacks {' and '.join(missing)}", fix, value=found)
    return Result(OK, name, f"{what} is ACTIVE with {' and '.join(needed)}", value=found)


def two_way_off_fix(stage: str) -> str:
    return (f"set \"twoWay\": false in context.stages.{stage} of cdk.json: the stage then sends as before and "
            f"receives no replies (the stack builds none of the two-way resources)")


def check_two_way_country(identity: dict, stage: str) -> Result:
    """Two-way SMS exists in some countries only (End User Messaging's SMS table, "Supports two-way SMS");
    where the identity's country lacks it, turning two-way on fails (TWO_WAY_NOT_SUPPORTED_IN_COUNTRY) and
    the deploy rolls back."""
    name = "two-way country"
    countries = sorted(identity["countries"])
    lacking = [country for country in countries if country not in TWO_WAY_COUNTRIES]
    if not countries:
        return Result(WARN, name, f"{identity['what']} has no numbers, so no country to receive replies in",
                      "add a number to the pool, or " + two_way_off_fix(stage))
    if lacking == countries:
        return Result(FAIL, name, f"{identity['what']}: End User Messaging has no two-way SMS in "
                      f"{', '.join(lacking)} ({TWO_WAY_COUNTRIES_URL}); turning it on would fail "
                      f"(TWO_WAY_NOT_SUPPORTED_IN_COUNTRY) and the deploy would roll back", two_way_off_fix(stage))
    if lacking:
        return Result(WARN, name, f"{identity['what']}: its numbers in {', '.join(lacking)} cannot receive replies "
                      f"(no two-way SMS there, {TWO_WAY_COUNTRIES_URL}); those in "
                      f"{', '.join(c for c in countries if c not in lacking)} can",
                      f"use a pool of numbers in countries with two-way SMS, or {two_way_off_fix(stage)}")
    return Result(OK, name, f"{', '.join(countries)} offers two-way SMS (End User Messaging's SMS table)")


def check_two_way_region(sms, identity: dict, stage: str, region_name: str) -> Result:
    """AWS lists no Regions for two-way SMS, yet End User Messaging can refuse one
    (TWO_WAY_NOT_SUPPORTED_IN_REGION). A number or pool of this account with two-way on in this Region
    shows that it works here; without one, preflight says it cannot tell."""
    name = "two-way region"
    if identity["info"].get("TwoWayEnabled"):
        return Result(OK, name, f"{identity['what']} has two-way on already, in {region_name}")
    try:
        enabled = sms.describe_phone_numbers(Filters=[{"Name": "two-way-enabled", "Values": ["true"]}],
                                             MaxResults=1)["PhoneNumbers"]
    except (ClientError, BotoCoreError) as err:
        return Result(WARN, name, f"could not look for a number with two-way on: {aws_error(err)}",
                      "allow these credentials sms-voice:DescribePhoneNumbers")
    if enabled:
        return Result(OK, name, f"{region_name} offers two-way SMS: phone number "
                      f"{enabled[0].get('PhoneNumberId', '?')} of this account has it on")
    return Result(WARN, name, f"AWS lists no Regions for two-way SMS, and no number of this account has it on in "
                  f"{region_name}, so preflight cannot tell whether {region_name} offers it; if not, the deploy "
                  f"fails with TWO_WAY_NOT_SUPPORTED_IN_REGION and rolls back, saying so",
                  f"deploy and see; if it fails so, {two_way_off_fix(stage)}")


def check_keywords(cloudformation, stage: str) -> Result:
    """HELP and STOP: AWS's pages disagree on whether PutKeyword may change their answers
    (tests/aws_docs/sms-voice-help-stop-keywords.json), so a refusal does not fail the deploy; the stage's
    stack says what End User Messaging kept (its KeywordsNotSet output), read here once deployed."""
    name = "HELP and STOP"
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name(stage))["Stacks"][0]
    except ClientError as err:
        if error_code(err) != "ValidationError":  # "Stack with id ... does not exist"
            return Result(WARN, name, f"could not read {stack_name(stage)}: {aws_error(err)}",
                          "allow these credentials cloudformation:DescribeStacks")
        return Result(OK, name, "not deployed yet: the deploy sets the stage's answers; should End User Messaging "
                      "refuse to change HELP or STOP (AWS's pages disagree on whether it may), the deploy goes on, "
                      "and the stack's KeywordsNotSet output, preflight and make smoke say which answer it kept")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    kept = outputs.get("KeywordsNotSet")
    if kept is None:
        return Result(OK, name, f"{stack_name(stage)} predates the KeywordsNotSet output; the next deploy sets the "
                      f"stage's answers and reports any refusal there")
    if REFUSED in kept:
        return Result(WARN, name, f"the deployed stage's identity keeps End User Messaging's own answer: {kept}",
                      "replies and opt-outs work as before; to see the answer it gives, `aws pinpoint-sms-voice-v2 "
                      "describe-keywords --origination-identity <the stage's identity> --keywords HELP STOP`")
    if kept == "none":
        return Result(OK, name, "the deployed stage's identity answers them with the stage's text")
    return Result(OK, name, f"the deployed stage's identity answers them with the stage's text, but: {kept}")


def check_sns_sandbox(sns) -> Result:
    try:
        in_sandbox = sns.get_sms_sandbox_account_status()["IsInSandbox"]
    except (ClientError, BotoCoreError) as err:
        return Result(FAIL, "SNS SMS sandbox", aws_error(err), "allow these credentials sns:GetSMSSandboxAccountStatus")
    if in_sandbox:
        return Result(WARN, "SNS SMS sandbox", "this account is in the SNS SMS sandbox: SMS goes only to verified "
                      "destination numbers",
                      "verify each test number (SNS console > Text messaging (SMS) > Sandbox destination phone "
                      "numbers > Add phone number), or request production access (same page > Exit SMS sandbox); "
                      "https://docs.aws.amazon.com/sns/latest/dg/sns-sms-sandbox.html")
    return Result(OK, "SNS SMS sandbox", "out of the sandbox: SMS can go to any number")


def check_sms_voice_sandbox(sms) -> Result:
    name = "End User Messaging sandbox"
    try:
        attributes = {a["Name"]: a["Value"] for page in sms.get_paginator("describe_account_attributes").paginate()
                      for a in page["AccountAttributes"]}
    except (ClientError, BotoCoreError) as err:
        return Result(FAIL, name, aws_error(err), "allow these credentials sms-voice:DescribeAccountAttributes")
    tier = attributes.get("ACCOUNT_TIER", "unknown")
    if tier != "PRODUCTION":
        return Result(WARN, name, f"account tier {tier}: SMS and MMS go only to verified destination numbers, "
                      f"and spending is limited to $1 a month",
                      "verify each test number (`aws pinpoint-sms-voice-v2 create-verified-destination-number "
                      "--destination-phone-number +1…`), or request production access: "
                      "https://docs.aws.amazon.com/sms-voice/latest/userguide/sandbox.html")
    return Result(OK, name, "account tier PRODUCTION")


def check_sns_spend_quota(sns, quotas, config: StageConfig, region_name: str) -> Result:
    """monthlySpendLimitUsd against the account's SNS SMS spend quota, which SetSMSAttributes will not exceed.

    Service Quotas gives the quota where it lists it. Otherwise GetSMSAttributes' MonthlySpendLimit is the best
    read-only figure: it starts at the quota, and only a SetSMSAttributes call lowers it.
    """
    name = "SNS SMS spend quota"
    limit = config.monthly_spend_limit_usd
    if not limit:
        return Result(OK, name, "monthlySpendLimitUsd is not set: the stack leaves the account's limit alone")
    if not config.account_settings:
        return Result(OK, name, "accountSettings is false: the stage with accountSettings sets the limit")
    quota, source = None, None
    try:
        for page in quotas.get_paginator("list_service_quotas").paginate(ServiceCode="sns"):
            for item in page["Quotas"]:
                if item["QuotaName"].strip().lower() == SNS_SPEND_QUOTA_NAME and item.get("Value") is not None:
                    quota, source = item["Value"], "Service Quotas"
    except (ClientError, BotoCoreError):
        pass  # no access to Service Quotas, or no such quota listed: read SNS's own setting below
    if quota is None:
        try:
            quota = float(sns.get_sms_attributes(attributes=["MonthlySpendLimit"])["attributes"]["MonthlySpendLimit"])
            source = "SNS MonthlySpendLimit"
        except (ClientError, BotoCoreError, KeyError, ValueError) as err:
            return Result(FAIL, name, f"could not read the quota: {aws_error(err)}",
                          "allow these credentials sns:GetSMSAttributes (or servicequotas:ListServiceQuotas)")
    shown = f"{quota:g}"
    if limit > quota:
        fix = SNS_QUOTA_FIX.format(limit=limit, region=region_name, quota=shown)
        if source == "SNS MonthlySpendLimit":
            fix += (f". If AWS has already raised your quota to ${limit} or more, ${shown} is only the account's "
                    f"current limit and the deploy will raise it")
        return Result(FAIL, name, f"monthlySpendLimitUsd ${limit} is above the quota ${shown} ({source}); "
                      f"SetSMSAttributes would refuse it and the deploy would roll back", fix)
    return Result(OK, name, f"monthlySpendLimitUsd ${limit} is within ${shown} ({source})")


def check_sms_voice_spend_limits(sms, config: StageConfig, region_name: str) -> Result:
    """monthlySpendLimitUsd against End User Messaging's account limits (MaxLimit) for SMS, and MMS where on."""
    name = "End User Messaging spend limits"
    wanted = []
    if config.sms_provider == "sms-voice":
        wanted.append(("SMS", "TEXT_MESSAGE_MONTHLY_SPEND_LIMIT"))
    if config.origination_identity:
        wanted.append(("MMS", "MEDIA_MESSAGE_MONTHLY_SPEND_LIMIT"))
    try:
        limits = {item["Name"]: item for page in sms.get_paginator("describe_spend_limits").paginate()
                  for item in page["SpendLimits"]}
    except (ClientError, BotoCoreError) as err:
        return Result(FAIL, name, aws_error(err), "allow these credentials sms-voice:DescribeSpendLimits")
    maxima = {label: limits.get(key, {}).get("MaxLimit") for label, key in wanted}
    shown = ", ".join(f"{label} ${value}" for label, value in maxima.items())
    limit = config.monthly_spend_limit_usd
    if not limit:
        return Result(OK, name, f"monthlySpendLimitUsd is not set: the account limits apply ({shown})")
    over = {label: value for label, value in maxima.items() if value is None or limit > value}
    if over:
        lowest = min((value for value in over.values() if value is not None), default=0)
        return Result(FAIL, name, f"monthlySpendLimitUsd ${limit} is above the account limit for "
                      f"{' and '.join(over)} ({shown})",
                      EUM_QUOTA_FIX.format(limit=limit, region=region_name, quota=lowest))
    return Result(OK, name, f"monthlySpendLimitUsd ${limit} is within the account limits ({shown})")


# CloudWatch Logs allows two subscription filters per log group (PutSubscriptionFilter,
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutSubscriptionFilter.html),
# and every stage subscribes its status ingest to SNS's two account-wide delivery-status groups.
SUBSCRIPTION_FILTERS_PER_GROUP = 2


def check_sns_log_subscriptions(logs, stage: str, config: StageConfig, region_name: str, account: str) -> Result:
    """Room on SNS's delivery-status log groups for this stage's subscription filter."""
    name = "SNS delivery-status log groups"
    base = f"sns/{region_name}/{account}/DirectPublishToPhoneNumber"
    ours = stack_name(stage) + "-"  # CloudFormation names the filters after the stack
    crowded, missing = [], []
    for group in (base, f"{base}/Failure"):
        try:
            filters = [f["filterName"] for page in logs.get_paginator("describe_subscription_filters").paginate(
                logGroupName=group) for f in page["subscriptionFilters"]]
        except ClientError as err:
            if error_code(err) == "ResourceNotFoundException":
                missing.append(group)
                continue
            return Result(FAIL, name, aws_error(err), "allow these credentials logs:DescribeSubscriptionFilters")
        others = [f for f in filters if not f.startswith(ours)]
        if len(others) >= SUBSCRIPTION_FILTERS_PER_GROUP:
            crowded.append(f"{group} ({', '.join(others)})")
    if crowded:
        return Result(FAIL, name, f"no room for this stage's subscription filter: CloudWatch Logs allows "
                      f"{SUBSCRIPTION_FILTERS_PER_GROUP} per log group, and {'; '.join(crowded)} has them",
                      "remove a filter you no longer need (`aws logs delete-subscription-filter`), or deploy this "
                      "stage to another account or region")
    if missing and not config.account_settings:
        return Result(FAIL, name, f"{', '.join(missing)} does not exist, and this stage (accountSettings false) "
                      "does not create it", "deploy the stage with accountSettings true in this account and "
                      "region first")
    if missing:
        return Result(OK, name, "the deploy creates them (SNS has not logged SMS here yet)")
    return Result(OK, name, "they exist, with room for this stage's subscription filter")


def check_sms_voice_metrics_role(iam) -> Result:
    """End User Messaging publishes its CloudWatch metrics (the spend alarms watch them) only
    through its service-linked role (https://docs.aws.amazon.com/sms-voice/latest/userguide/monitoring-cloudwatch.html)."""
    name = "End User Messaging metrics"
    try:
        roles = [r["RoleName"] for page in iam.get_paginator("list_roles").paginate(
            PathPrefix="/aws-service-role/sms-voice.amazonaws.com/") for r in page["Roles"]]
    except (ClientError, BotoCoreError) as err:
        return Result(WARN, name, f"could not list service-linked roles: {aws_error(err)}",
                      "allow these credentials iam:ListRoles, or check the role in the IAM console")
    if not roles:
        return Result(WARN, name, "no service-linked role for sms-voice.amazonaws.com: End User Messaging "
                      "publishes no CloudWatch metrics, so the spend alarms and dashboard stay empty",
                      "aws iam create-service-linked-role --aws-service-name sms-voice.amazonaws.com")
    return Result(OK, name, f"service-linked role {roles[0]} publishes its metrics")


def check_bootstrap(cloudformation, ssm, qualifier: str = DEFAULT_QUALIFIER) -> Result:
    name = "CDK bootstrap"
    fix = "run `make bootstrap` with these credentials and region (it also upgrades an old bootstrap stack)"
    try:
        stack = cloudformation.describe_stacks(StackName="CDKToolkit")["Stacks"][0]
    except ClientError as err:
        if error_code(err) == "ValidationError":  # "Stack with id CDKToolkit does not exist"
            return Result(FAIL, name, "no CDKToolkit stack in this account and region", fix)
        return Result(FAIL, name, aws_error(err), "allow these credentials cloudformation:DescribeStacks")
    status = stack["StackStatus"]
    if status not in USABLE_STACK_STATUSES:
        return Result(FAIL, name, f"the CDKToolkit stack is {status}", fix)
    parameter = f"/cdk-bootstrap/{qualifier}/version"
    try:
        version = int(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
    except ClientError as err:
        return Result(FAIL, name, f"{parameter}: {aws_error(err)}", fix)
    if version < MIN_BOOTSTRAP_VERSION:
        return Result(FAIL, name, f"bootstrap version {version}; this app needs {MIN_BOOTSTRAP_VERSION} or newer", fix)
    return Result(OK, name, f"CDKToolkit {status}, bootstrap version {version} (needs {MIN_BOOTSTRAP_VERSION}+)")


def run(stage: str, raw: dict, context: dict, session) -> Iterator[Result]:
    """Every check in order. ``session`` is a boto3 Session (the tests hand in stubbed clients through it)."""
    region_name = region(session)
    blocker = check_endpoint()
    if blocker:
        yield blocker
        return
    if not region_name:  # no AWS call can be made: say so, and whether credentials are there for the next run
        yield check_region(None, None)
        yield check_credentials_found(session)
        return
    client = lambda service: session.client(service, region_name=region_name)  # noqa: E731
    credentials = check_credentials(client("sts"))
    yield credentials
    if credentials.status == FAIL:
        return
    sms, sns = client("pinpoint-sms-voice-v2"), client("sns")
    settings = check_stage(stage, raw, sms, region_name)
    yield settings
    config: StageConfig | None = settings.value
    yield check_region(region_name, config)
    if config is None:
        yield Result(SKIP, "account checks", "the stage settings must parse first")
    else:
        if config.origination_identity:
            identity = check_identity(sms, config, region_name, credentials.value)
            yield identity
            if config.two_way and identity.value is None:
                yield Result(SKIP, "two-way", "the origination identity must be found first")
            elif config.two_way:
                yield check_two_way_country(identity.value, stage)
                yield check_two_way_region(sms, identity.value, stage, region_name)
                yield check_keywords(client("cloudformation"), stage)
            elif config.two_way_off and config.can_receive:
                yield Result(OK, "two-way", "off (twoWay false): the stage receives no replies, and the stack "
                             "leaves the identity's two-way settings and keywords alone")
        if config.sms_provider == "sns":
            yield check_sns_sandbox(sns)
            yield check_sns_spend_quota(sns, client("service-quotas"), config, region_name)
        if config.uses_end_user_messaging:
            yield check_sms_voice_sandbox(sms)
            yield check_sms_voice_spend_limits(sms, config, region_name)
            yield check_sms_voice_metrics_role(client("iam"))
        yield check_sns_log_subscriptions(client("logs"), stage, config, region_name, credentials.value)
    qualifier = context.get("@aws-cdk/core:bootstrapQualifier", DEFAULT_QUALIFIER)
    yield check_bootstrap(client("cloudformation"), client("ssm"), qualifier)


def main(argv: list[str] | None = None, session=None, out=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev", help="a stage under context.stages in cdk.json (default dev)")
    args = parser.parse_args(argv)
    try:
        raw, context = stage_settings(args.stage)
    except StageConfigError as err:  # an unknown stage: no check runs, no AWS call is made
        return refuse(parser.prog, err)
    return report(run(args.stage, raw, context, session or boto3.Session()), out)


if __name__ == "__main__":
    sys.exit(main())
