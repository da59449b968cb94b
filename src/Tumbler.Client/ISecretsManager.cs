using Tumbler.Client.Model;

namespace Tumbler.Client;

/// <summary>
/// The Secrets Manager operations an application uses, with the signatures of the AWS SDK's
/// IAmazonSecretsManager (same method, request and response names), so code can move to
/// AWSSDK.SecretsManager by swapping the implementation. Named ISecretsManager so it is not confused
/// with Tumbler.Core's rotation interfaces. Implemented by <see cref="SecretsManagerClient"/>; tests and
/// <see cref="SecretCache"/> users may supply their own.
/// </summary>
public interface ISecretsManager
{
    Task<GetSecretValueResponse> GetSecretValueAsync(GetSecretValueRequest request, CancellationToken cancellationToken = default);
    Task<DescribeSecretResponse> DescribeSecretAsync(DescribeSecretRequest request, CancellationToken cancellationToken = default);
    Task<ListSecretsResponse> ListSecretsAsync(ListSecretsRequest request, CancellationToken cancellationToken = default);
    Task<PutSecretValueResponse> PutSecretValueAsync(PutSecretValueRequest request, CancellationToken cancellationToken = default);
    Task<CreateSecretResponse> CreateSecretAsync(CreateSecretRequest request, CancellationToken cancellationToken = default);
    Task<BatchGetSecretValueResponse> BatchGetSecretValueAsync(BatchGetSecretValueRequest request, CancellationToken cancellationToken = default);
}
