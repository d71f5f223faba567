"""The embedded AWS's SNS opt-out list (devstack/snsoptouts.py): CheckIfPhoneNumberIsOptedOut, ListPhoneNumbersOptedOut
and OptInPhoneNumber read and change one list, as on AWS, where moto's check answered from a rule of its own
(true for any number ending in 99, false for every number on its list)."""
from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from devstack import snsoptouts

ON_MOTOS_LIST = "+447420500600"  # moto's sample data: a fresh account's list holds it
ENDS_IN_99 = "+14255550199"


@pytest.fixture
def sns():
    assert snsoptouts.install()  # moto is the version it was read against
    with mock_aws():
        yield boto3.client("sns", region_name="us-east-1", aws_access_key_id="testing",
                           aws_secret_access_key="testing")


def opted_out(sns, number: str) -> bool:
    return sns.check_if_phone_number_is_opted_out(phoneNumber=number)["isOptedOut"]


def test_a_number_is_opted_out_exactly_when_the_list_holds_it(sns):
    listed = sns.list_phone_numbers_opted_out()["phoneNumbers"]
    assert ON_MOTOS_LIST in listed and ENDS_IN_99 not in listed
    assert all(opted_out(sns, number) for number in listed)
    assert not opted_out(sns, ENDS_IN_99)  # moto's own rule said yes


def test_opting_a_number_in_takes_it_off_the_list_and_the_check_agrees(sns):
    sns.opt_in_phone_number(phoneNumber=ON_MOTOS_LIST)
    assert ON_MOTOS_LIST not in sns.list_phone_numbers_opted_out()["phoneNumbers"]
    assert not opted_out(sns, ON_MOTOS_LIST)


def test_install_keeps_moto_s_method_when_moto_is_another_version(monkeypatch):
    from moto.sns.models import SNSBackend

    monkeypatch.setattr(SNSBackend, "check_if_phone_number_is_opted_out", snsoptouts.MOTO_CHECK)
    monkeypatch.setattr(snsoptouts, "MOTO_SOURCE", "0" * 64)
    assert snsoptouts.install() is False
    assert SNSBackend.check_if_phone_number_is_opted_out is snsoptouts.MOTO_CHECK
