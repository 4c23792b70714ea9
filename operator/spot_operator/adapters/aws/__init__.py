"""boto3 adapters for the ports: EC2, traffic (Elastic IP, ELBv2, Route 53), prices and the SQS queue."""

from spot_operator.adapters.aws.clients import AwsClients, AwsConfig, CallRecorder
from spot_operator.adapters.aws.ec2 import AwsEc2
from spot_operator.adapters.aws.prices import AwsSpotPrices
from spot_operator.adapters.aws.queue import SqsNoticeQueue
from spot_operator.adapters.aws.traffic import AwsTraffic

__all__ = [
    "AwsClients",
    "AwsConfig",
    "AwsEc2",
    "AwsSpotPrices",
    "AwsTraffic",
    "CallRecorder",
    "SqsNoticeQueue",
]
