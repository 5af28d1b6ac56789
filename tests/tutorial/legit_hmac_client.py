# The tutorial's legitimacy check with hmac ("使用 hmac 加密", client.py), faithfully: it
# answers the server's 32 random bytes and closes. See README.md for what changed.
# Usage: legit_hmac_client.py HOST PORT
import socket
import hmac
import sys
secret_key = '老衲洗头用飘柔'.encode('utf-8')
sk = socket.socket()
sk.connect((sys.argv[1], int(sys.argv[2])))  # changed: was ('127.0.0.1', 9000)
urandom = sk.recv(32)
hmac_obj = hmac.new(key=secret_key, msg=urandom, digestmod='md5')  # changed: digestmod (Python >= 3.8)
sk.send(hmac_obj.hexdigest().encode('utf-8'))
print('-----')
sk.close()
